"""The staff sockets: the agent console (the live queue, watched conversations, whispers) and the
supervisors' monitor (everything, read-only).

Both join their account's `user.<id>` group before checking access, and on `access.revoked` check again:
close with 4401 when the session no longer signs anyone in, 4403 when the account lost the right
(conversations/console/access.py). A console socket stops
watching a conversation the agent may no longer open (claimed by someone else, handed back, expired), so
it receives no more of its messages.

A console socket remembers who is assigned each conversation its agent typed in (`assignees`), so typing
frames cost no database work: every change of assignee (claim, hand back, close, expiry) is pushed to the
`agents` group or the conversation's group, which this socket is in, and forgets that entry first.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.auth import get_user
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError

from conversations import assignment, realtime, teams
from conversations.console import actions, presence
from conversations.console.permissions import is_agent, is_supervisor
from conversations.models import Conversation, Sender, conversation_group
from talia import payloads, sockets

CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN = 4401, 4403


class StaffConsumer(sockets.GuardedJsonConsumer):
    """Accept, then close with 4401 (not signed in) or 4403 (not allowed) so the page can say why.

    Frames are validated and rate limited by the base (talia.sockets); sockets open at once are capped
    per user.
    """

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # Join before checking: a revocation committed after the check still reaches this socket.
        # Channels leaves every group in `self.groups` when the socket closes.
        self.groups.append(realtime.user_group(user.pk))
        await self.channel_layer.group_add(realtime.user_group(user.pk), self.channel_name)
        if not await database_sync_to_async(self.allowed)(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not await self.admit([sockets.SlotKey("user", str(user.pk), settings.TALIA_WS_MAX_PER_USER)]):
            return
        self.user = user
        await self.joined()

    def allowed(self, user: Any) -> bool:
        raise NotImplementedError

    async def joined(self) -> None:
        raise NotImplementedError

    async def forward(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def access_revoked(self, event: dict[str, Any]) -> None:
        """The account may have lost a right: sign the session in again and check this socket's rule.

        Closes with 4401 when the session no longer signs anyone in (account deactivated or deleted,
        password changed: Django's own session check), with 4403 when the account lost this socket's right.
        """
        if not hasattr(self, "user"):
            return
        # The scope's user is as it was when the socket opened; this is who the session is now, and the
        # fresh copy is kept, so rules read later (who may watch what) see the change too.
        user = await get_user(self.scope)
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
        elif not await database_sync_to_async(self.allowed)(user):
            await self.close(code=CLOSE_FORBIDDEN)
        else:
            self.user = user

    async def tell_monitor_who_is_online(self) -> None:
        await database_sync_to_async(presence.announce)()


# Conversations whose assignee a console socket remembers; past this, it starts again from empty.
ASSIGNEES_CACHED = 500


class ConsoleConsumer(StaffConsumer):
    watching: set[str]
    contacts: dict[str, str]  # watched conversation id -> its contact's id (the `staff-contact` group joined)
    assignees: dict[str, int | None]

    def allowed(self, user: Any) -> bool:
        return is_agent(user)

    async def joined(self) -> None:
        self.watching = set()
        self.contacts = {}
        self.assignees = {}
        self.queues: list[str] = []
        await sockets.join(
            self.channel_layer, self.channel_name, [realtime.AGENTS_GROUP, realtime.agent_group(self.user.pk)]
        )
        await self.join_queues()
        await sync_to_async(presence.touch, thread_sensitive=False)(self.user.pk, self.channel_name)
        await sync_to_async(presence.record_activity, thread_sensitive=False)(self.user.pk)  # opening it is activity
        await self.tell_monitor_who_is_online()
        # Back online: waiting conversations of the agent's auto-assign teams may go to them now.
        await database_sync_to_async(assignment.fill)(self.user)

    def queue_groups(self, user: Any) -> list[str]:
        """The queues this socket hears of besides the unrouted one: every team's, or the agent's teams'."""
        if is_supervisor(user):
            return [realtime.SUPERVISORS_GROUP]
        return [realtime.team_group(team_id) for team_id in teams.team_ids_of(user)]

    async def join_queues(self, *, announce: bool = False) -> None:
        """Join the queue groups the agent belongs to now, leaving those they no longer do; with `announce`,
        tell the page when they changed (`queues.changed`)."""
        wanted = await database_sync_to_async(self.queue_groups)(self.user)
        for group in set(self.queues) - set(wanted):
            await self.channel_layer.group_discard(group, self.channel_name)
        joining = [group for group in wanted if group not in self.queues]
        if joining:
            await sockets.join(self.channel_layer, self.channel_name, joining)
        changed = set(wanted) != set(self.queues)
        self.queues = wanted
        if changed and announce:
            # The page's queue was rendered for the old teams: it may reload to list the new ones.
            teams_now = sorted(int(group.split(".", 1)[1]) for group in wanted if group.startswith("team."))
            await self.send_json({"type": "queues.changed", "teams": teams_now})

    async def access_revoked(self, event: dict[str, Any]) -> None:
        """Also sent when the agent's teams change (conversations.access): join the right queues."""
        await super().access_revoked(event)
        if hasattr(self, "queues"):
            await self.join_queues(announce=True)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "user"):
            for group in getattr(self, "queues", []):
                await self.channel_layer.group_discard(group, self.channel_name)
            await self.channel_layer.group_discard(realtime.AGENTS_GROUP, self.channel_name)
            await self.channel_layer.group_discard(realtime.agent_group(self.user.pk), self.channel_name)
            for conversation_id in getattr(self, "watching", set()):
                await self.channel_layer.group_discard(conversation_group(conversation_id), self.channel_name)
                await self.channel_layer.group_discard(realtime.staff_group(conversation_id), self.channel_name)
            for contact_id in set(getattr(self, "contacts", {}).values()):
                await self.channel_layer.group_discard(realtime.staff_contact_group(contact_id), self.channel_name)
            await sync_to_async(presence.leave, thread_sensitive=False)(self.user.pk, self.channel_name)
            await self.tell_monitor_who_is_online()

    def _conversation(self, conversation_id: object) -> Conversation | None:
        try:
            return Conversation.objects.filter(pk=str(conversation_id)).first()
        except ValidationError:  # not a UUID
            return None

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = payloads.frame_type(content)
        if kind == "ping":
            await sync_to_async(presence.touch, thread_sensitive=False)(self.user.pk, self.channel_name)
            await self.on_ping_idle()
            await self.send_json({"type": "pong"})
        elif kind == "activity":
            await self.on_activity()
        elif kind == "watch":
            await self.on_watch(content)
        elif kind == "typing":
            await self.on_typing(content)
        elif kind == "resume":
            await self.on_resume(content)
        else:
            await self.error(
                "unknown_type", "Send a JSON object whose type is watch, resume, typing, activity or ping."
            )

    async def on_ping_idle(self) -> None:
        """The ping comes every 25 s even when nobody touches the page: the moment to notice the agent
        turned idle (automatically away) and tell the monitor, once."""
        if await sync_to_async(presence.notice_idle, thread_sensitive=False)(self.user.pk):
            await self.tell_monitor_who_is_online()
            await database_sync_to_async(assignment.release_offers)(self.user)

    async def on_activity(self) -> None:
        """The agent used the console (the page throttles these): back online if idle made them away."""
        if await sync_to_async(presence.record_activity, thread_sensitive=False)(self.user.pk):
            await self.tell_monitor_who_is_online()
            await database_sync_to_async(assignment.fill)(self.user)

    async def on_watch(self, content: dict[str, Any]) -> None:
        conversation = await database_sync_to_async(self._conversation)(content.get("conversation_id"))
        if conversation is None or not await database_sync_to_async(actions.can_watch)(self.user, conversation):
            await self.error("forbidden", "You may not watch this conversation.")
            return
        self.watching.add(str(conversation.id))
        self.contacts[str(conversation.id)] = str(conversation.contact_id)
        await sockets.join(
            self.channel_layer,
            self.channel_name,
            [
                conversation.group_name,
                realtime.staff_group(conversation.id),
                realtime.staff_contact_group(conversation.contact_id),  # the sidebar: `contact.changed`
            ],
        )
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
        if conversation is None or not await database_sync_to_async(actions.can_watch)(self.user, conversation):
            await self.error("forbidden", "You may not watch this conversation.")
            return
        for event in await database_sync_to_async(realtime.missed_messages)(conversation.id, after):
            await self.send_json(event)

    async def on_typing(self, content: dict[str, Any]) -> None:
        """Relayed from this socket's loop; the database is read once per conversation (see `assignees`)."""
        conversation_id = str(content.get("conversation_id"))
        if conversation_id not in self.assignees:
            conversation = await database_sync_to_async(self._conversation)(conversation_id)
            if conversation is None:
                await self.error("forbidden", "You can only type in your own conversations.")
                return
            if len(self.assignees) >= ASSIGNEES_CACHED:
                self.assignees.clear()
            conversation_id = str(conversation.id)
            self.assignees[conversation_id] = conversation.assigned_agent_id
        if self.assignees[conversation_id] != self.user.pk:
            await self.error("forbidden", "You can only type in your own conversations.")
            return
        await realtime.relay_typing(self.channel_layer, conversation_id, Sender.AGENT, bool(content.get("active")))

    # --- From the channel layer ----------------------------------------------------------------------

    handoff_requested = message_new = conversation_assigned = StaffConsumer.forward
    end_requested = note_added = brief_ready = message_status = labels_changed = StaffConsumer.forward
    offer_made = offer_withdrawn = StaffConsumer.forward  # auto-assignment offers to this agent
    contact_changed = StaffConsumer.forward  # the sidebar fetches the contact's new data

    async def message_delta(self, event: dict[str, Any]) -> None:
        """The assistant's reply while it is written, for the visitor's widget: the console shows it stored."""

    async def forward_and_forget(self, event: dict[str, Any]) -> None:
        """Forward a change of the queue; the conversation's assignee may have changed with it."""
        self.assignees.pop(str(event.get("conversation_id")), None)
        await self.send_json(event)

    queue_added = queue_removed = forward_and_forget

    async def forward_and_recheck(self, event: dict[str, Any]) -> None:
        """Forward a change of status, then stop watching the conversation if the agent may no longer open it."""
        self.assignees.pop(str(event.get("conversation_id")), None)
        await self.send_json(event)
        conversation_id = str(event.get("conversation_id"))
        if conversation_id in self.watching and not await database_sync_to_async(self.may_watch)(conversation_id):
            self.watching.discard(conversation_id)
            await self.channel_layer.group_discard(conversation_group(conversation_id), self.channel_name)
            await self.channel_layer.group_discard(realtime.staff_group(conversation_id), self.channel_name)
            contact_id = self.contacts.pop(conversation_id, None)
            if contact_id is not None and contact_id not in self.contacts.values():
                await self.channel_layer.group_discard(realtime.staff_contact_group(contact_id), self.channel_name)

    handoff_accepted = handoff_cancelled = handoff_expired = forward_and_recheck
    conversation_handed_back = conversation_closed = conversation_transferred = forward_and_recheck

    def may_watch(self, conversation_id: str) -> bool:
        conversation = self._conversation(conversation_id)
        return conversation is not None and actions.can_watch(self.user, conversation)

    async def typing(self, event: dict[str, Any]) -> None:
        if event.get("sender") != Sender.AGENT:  # an agent's own typing is not echoed to agents
            await self.send_json(event)


class MonitorConsumer(StaffConsumer):
    """Supervisors only: every open conversation's changes and messages, agents coming and going."""

    def allowed(self, user: Any) -> bool:
        return is_supervisor(user)

    async def joined(self) -> None:
        await self.channel_layer.group_add(realtime.MONITOR_GROUP, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "user"):
            await self.channel_layer.group_discard(realtime.MONITOR_GROUP, self.channel_name)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if payloads.frame_type(content) == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.error("read_only", "The monitor only listens; send ping to keep the socket alive.")

    conversation_opened = queue_added = queue_removed = handoff_accepted = StaffConsumer.forward
    conversation_closed = conversation_handed_back = message_new = end_requested = StaffConsumer.forward
    summary_ready = note_added = brief_ready = agents_online = message_status = StaffConsumer.forward
    labels_changed = conversation_transferred = monitor_figures = StaffConsumer.forward
