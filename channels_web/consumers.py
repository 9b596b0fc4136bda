"""The visitor's WebSocket: pushes of their conversation, and messages, typing and resume from them."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from rest_framework import serializers

from channels_web import files, ratelimit, security, services
from channels_web.serializers import LocaleField, MessageFieldsSerializer, ResumeSerializer
from conversations import inbox, realtime
from conversations.models import Sender, conversation_group
from talia import payloads, sockets

logger = logging.getLogger("talia.webchat")

CLOSE_BAD_SESSION, CLOSE_TOKEN, CLOSE_ORIGIN = 4400, 4401, 4403
RESUME_LIMIT = 200
RECENTLY_SENT = 500


def in_a_thread(function: Any) -> Any:
    """`function` run in a worker thread with its own database connection, closed after it.

    Not on Channels' default thread (`thread_sensitive`), one per process shared by every socket:
    there the database calls of hundreds of sockets (connects, a burst of messages) queue behind each
    other. HTTP requests already run each on a thread of its own (Django's ThreadSensitiveContext).
    """
    return database_sync_to_async(function, thread_sensitive=False)


class WebchatConsumer(sockets.GuardedJsonConsumer):
    """Joins the visitor's contact group (new conversations) and their open conversation's group.

    Frames are validated and rate limited by the base (talia.sockets); sockets open at once are capped
    per client IP and per widget session.
    """

    visitor: services.Visitor
    contact_group: str
    conversation_group: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Ids of messages already sent on this socket: a catch-up and a live push may overlap.
        self.sent: deque[str] = deque(maxlen=RECENTLY_SENT)

    async def connect(self) -> None:
        # Accept first, so a refusal reaches the widget as a close code it can explain.
        await self.accept()
        params = {key: values[0] for key, values in parse_qs(self.scope.get("query_string", b"").decode()).items()}
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self.scope.get("headers", [])
        }
        origin = headers.get("origin")
        if not security.origin_allowed(origin, headers.get("host", "")):
            await self.close(code=CLOSE_ORIGIN)
            return
        if not security.token_ok(params.get("token")):
            await self.close(code=CLOSE_TOKEN)
            return
        session_id = params.get("session_id", "")
        if not services.SESSION_ID.match(session_id):
            await self.close(code=CLOSE_BAD_SESSION)
            return
        peer = (self.scope.get("client") or [None])[0]
        try:
            locale = LocaleField().to_internal_value(params.get("locale", "")) or None
        except serializers.ValidationError:
            locale = None
        self.visitor = services.Visitor(
            session_id=session_id,
            ip=security.client_ip(peer, headers),
            user_agent=headers.get("user-agent", ""),
            origin=origin or "",
            locale=locale,
        )
        caps = [
            sockets.SlotKey("ip", self.visitor.ip or "unknown", settings.TALIA_WS_MAX_PER_IP),
            sockets.SlotKey("session", session_id, settings.TALIA_WS_MAX_PER_SESSION),
        ]
        if not await self.admit(caps):
            return
        # One database call (the session and the open conversation), one Redis round trip
        # to join both groups (talia.sockets.join); what is looked up here is kept for the socket's life.
        contact_id, conversation_id = await in_a_thread(self._open)()
        self.contact_group = realtime.contact_group(contact_id)
        groups = [self.contact_group]
        if conversation_id is not None:
            self.conversation_group = conversation_group(conversation_id)
            groups.append(self.conversation_group)
        await sockets.join(self.channel_layer, self.channel_name, groups)

    def _open(self) -> tuple[str, str | None]:
        """The visitor's contact id and their open conversation's id (None when none is open)."""
        session, new_contact = services.open_session_and_tell(self.visitor)
        # A contact made just now has no conversation: nothing to look up for a first-time visitor.
        conversation = None if new_contact else services.open_conversation(self.visitor.session_id)
        return str(session.contact_id), (str(conversation.id) if conversation is not None else None)

    async def disconnect(self, code: int) -> None:
        for group in (getattr(self, "contact_group", None), self.conversation_group):
            if group:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def _follow(self, conversation_id: str, *, catch_up: bool = False) -> None:
        """Listen to this conversation from now on; with `catch_up`, send what it already holds.

        A conversation that opens while the socket is connected pushed its first message before we
        could join its group, so that one is caught up from the database.
        """
        group = conversation_group(conversation_id)
        if group == self.conversation_group:
            return
        if self.conversation_group:
            await self.channel_layer.group_discard(self.conversation_group, self.channel_name)
        self.conversation_group = group
        await self.channel_layer.group_add(group, self.channel_name)
        if catch_up:
            for event in await in_a_thread(realtime.missed_messages)(conversation_id, 0, RESUME_LIMIT):
                await self._send_message(event)

    async def _send_message(self, event: realtime.MessageNew | dict[str, Any]) -> None:
        message_id = event["message"]["id"]
        if message_id in self.sent:
            return
        self.sent.append(message_id)
        # The documented frame only: not the status and model response id a reply's push carries for the
        # door that waits for it (conversations.waiting).
        frame = {"type": event["type"], "conversation_id": event["conversation_id"], "message": event["message"]}
        await self.send_json(files.event_with_urls(frame))

    # --- From the visitor ------------------------------------------------------------------------------

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = payloads.frame_type(content)
        handler = {
            "message": self.on_message,
            "typing": self.on_typing,
            "resume": self.on_resume,
            "ping": self.on_ping,
        }.get(kind or "")
        if handler is None:
            await self.error("unknown_type", "Send a JSON object whose type is message, typing, resume or ping.")
            return
        await handler(content)

    async def on_message(self, content: dict[str, Any]) -> None:
        wait = await in_a_thread(ratelimit.check_visitor)(self.visitor.session_id, self.visitor.ip)
        if wait is not None:
            await self.error("rate_limited", f"Too many messages. Try again in {wait} seconds.")
            return
        fields = await self.validated(MessageFieldsSerializer, content)
        if fields is None:
            return
        try:
            received = await in_a_thread(services.post_message)(
                self.visitor, fields["content"], fields.get("client_message_id", ""), fields.get("page", "")
            )
        except inbox.InboxError as exc:
            await self.error("invalid", str(exc))
            return
        await self._follow(str(received.conversation.id), catch_up=True)

    async def on_typing(self, content: dict[str, Any]) -> None:
        """Relayed from this socket's loop: no database, no thread (the conversation is known already)."""
        if self.conversation_group is None:
            return
        conversation_id = self.conversation_group.removeprefix("conversation.")
        await realtime.relay_typing(self.channel_layer, conversation_id, Sender.CONTACT, bool(content.get("active")))

    async def on_resume(self, content: dict[str, Any]) -> None:
        fields = await self.validated(ResumeSerializer, content)
        if fields is None:
            return
        after = fields["after"]
        conversation = await in_a_thread(services.latest_conversation)(self.visitor.session_id)
        if conversation is None:
            return
        for event in await in_a_thread(realtime.missed_messages)(conversation.id, after, RESUME_LIMIT):
            # A resume is an explicit request: send even what this socket already sent.
            self.sent.append(event["message"]["id"])
            await self.send_json(files.event_with_urls(dict(event)))

    async def on_ping(self, content: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    # --- From the channel layer (one handler per event type) --------------------------------------------

    async def message_new(self, event: dict[str, Any]) -> None:
        await self._send_message(event)

    async def message_delta(self, event: dict[str, Any]) -> None:
        """A piece of the assistant's reply while it is written (never stored; `message.new` follows)."""
        await self.send_json(event)

    async def typing(self, event: dict[str, Any]) -> None:
        if event.get("sender") != Sender.CONTACT:  # the visitor's own typing goes to agents only
            await self.send_json(event)

    async def conversation_opened(self, event: dict[str, Any]) -> None:
        await self.send_json(event)
        await self._follow(event["conversation_id"], catch_up=True)

    async def handoff_requested(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def handoff_accepted(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def handoff_cancelled(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def handoff_expired(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def conversation_handed_back(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def conversation_closed(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def end_declined(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def consent_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def end_requested(self, event: dict[str, Any]) -> None:
        pass  # the visitor asked; only the agent needs to hear it
