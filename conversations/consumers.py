"""The staff sockets: the agent console (the live queue, watched conversations, whispers) and the
supervisors' monitor (everything, read-only)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ValidationError

from conversations import console, presence, realtime
from conversations.models import Conversation, Sender

CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN = 4401, 4403


def _agents_online() -> realtime.AgentsOnline | None:
    agents = presence.online_agents()
    return None if agents is None else realtime.agents_online(list(agents))


class StaffConsumer(AsyncJsonWebsocketConsumer):
    """Accept, then close with 4401 (not signed in) or 4403 (not allowed) so the page can say why."""

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(self.allowed)(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        await self.joined()

    def allowed(self, user: Any) -> bool:
        raise NotImplementedError

    async def joined(self) -> None:
        raise NotImplementedError

    async def decode_json(self, text_data: str) -> Any:
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None

    async def error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "error": {"code": code, "message": message}})

    async def forward(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def tell_monitor_who_is_online(self) -> None:
        event = await database_sync_to_async(_agents_online)()
        if event is not None:
            await self.channel_layer.group_send(realtime.MONITOR_GROUP, dict(event))


class ConsoleConsumer(StaffConsumer):
    watching: set[str]

    def allowed(self, user: Any) -> bool:
        return console.is_agent(user)

    async def joined(self) -> None:
        self.watching = set()
        await self.channel_layer.group_add(realtime.AGENTS_GROUP, self.channel_name)
        await self.channel_layer.group_add(realtime.agent_group(self.user.pk), self.channel_name)
        await sync_to_async(presence.touch, thread_sensitive=False)(self.user.pk, self.channel_name)
        await self.tell_monitor_who_is_online()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "user"):
            await self.channel_layer.group_discard(realtime.AGENTS_GROUP, self.channel_name)
            await self.channel_layer.group_discard(realtime.agent_group(self.user.pk), self.channel_name)
            for conversation_id in getattr(self, "watching", set()):
                await self.channel_layer.group_discard(f"conversation.{conversation_id}", self.channel_name)
                await self.channel_layer.group_discard(realtime.staff_group(conversation_id), self.channel_name)
            await sync_to_async(presence.leave, thread_sensitive=False)(self.user.pk, self.channel_name)
            await self.tell_monitor_who_is_online()

    def _conversation(self, conversation_id: object) -> Conversation | None:
        try:
            return Conversation.objects.filter(pk=str(conversation_id)).first()
        except ValidationError:  # not a UUID
            return None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await sync_to_async(presence.touch, thread_sensitive=False)(self.user.pk, self.channel_name)
            await self.send_json({"type": "pong"})
        elif kind == "watch":
            await self.on_watch(content)
        elif kind == "typing":
            await self.on_typing(content)
        elif kind == "resume":
            await self.on_resume(content)
        else:
            await self.error("unknown_type", "Send a JSON object whose type is watch, resume, typing or ping.")

    async def on_watch(self, content: dict[str, Any]) -> None:
        conversation = await database_sync_to_async(self._conversation)(content.get("conversation_id"))
        if conversation is None or not await database_sync_to_async(console.can_watch)(self.user, conversation):
            await self.error("forbidden", "You may not watch this conversation.")
            return
        self.watching.add(str(conversation.id))
        await self.channel_layer.group_add(conversation.group_name, self.channel_name)
        await self.channel_layer.group_add(realtime.staff_group(conversation.id), self.channel_name)
        await self.send_json({"type": "watching", "conversation_id": str(conversation.id)})

    async def on_resume(self, content: dict[str, Any]) -> None:
        """The messages after `after` of a conversation this agent may watch, as `message.new` frames.

        The console asks when it sees a gap in `seq` or silence while a reply is due: pushes can be lost.
        """
        after = content.get("after", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            await self.error("invalid", "after must be the seq (a whole number) of the last message seen.")
            return
        conversation = await database_sync_to_async(self._conversation)(content.get("conversation_id"))
        if conversation is None or not await database_sync_to_async(console.can_watch)(self.user, conversation):
            await self.error("forbidden", "You may not watch this conversation.")
            return
        for event in await database_sync_to_async(realtime.missed_messages)(conversation.id, after):
            await self.send_json(event)

    async def on_typing(self, content: dict[str, Any]) -> None:
        conversation = await database_sync_to_async(self._conversation)(content.get("conversation_id"))
        if conversation is None or conversation.assigned_agent_id != self.user.pk:
            await self.error("forbidden", "You can only type in your own conversations.")
            return
        event = realtime.typing(conversation, Sender.AGENT, bool(content.get("active")))
        await self.channel_layer.group_send(conversation.group_name, dict(event))

    # --- From the channel layer ----------------------------------------------------------------------

    queue_added = queue_removed = handoff_accepted = handoff_requested = handoff_cancelled = StaffConsumer.forward
    handoff_expired = conversation_closed = conversation_handed_back = message_new = StaffConsumer.forward
    end_requested = note_added = brief_ready = StaffConsumer.forward

    async def typing(self, event: dict[str, Any]) -> None:
        if event.get("sender") != Sender.AGENT:  # an agent's own typing is not echoed to agents
            await self.send_json(event)


class MonitorConsumer(StaffConsumer):
    """Supervisors only: every open conversation's changes and messages, agents coming and going."""

    def allowed(self, user: Any) -> bool:
        return bool(user.is_active and user.is_staff)

    async def joined(self) -> None:
        await self.channel_layer.group_add(realtime.MONITOR_GROUP, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "user"):
            await self.channel_layer.group_discard(realtime.MONITOR_GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.error("read_only", "The monitor only listens; send ping to keep the socket alive.")

    conversation_opened = queue_added = queue_removed = handoff_accepted = StaffConsumer.forward
    conversation_closed = conversation_handed_back = message_new = end_requested = StaffConsumer.forward
    summary_ready = note_added = brief_ready = agents_online = StaffConsumer.forward
