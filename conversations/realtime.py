"""Realtime fan-out over the channel layer.

Every push is a typed envelope `{"type": ..., ...}` sent to one or more groups, and always after the
transaction that stored its data commits: a client never hears of a row it cannot read yet. If Redis is
down the push is logged and dropped; clients recover what they missed from the database on reconnect.
While the Redis breaker (talia.redis_client) is open, pushes are dropped at once instead of each waiting
for its timeout. Envelopes are the TypedDicts below; `publish` is called only from service modules
(inbox, state, console, presence, ...), never by consumers or views on the channel layer directly
(conversations/tests/test_realtime_boundary.py).

Groups: `conversation.<id>` (the visitor and anyone viewing that conversation), `staff.<id>` (the
staff viewing that conversation: internal notes, the brief), `agent.<user id>` (one agent's console
sockets: whispers), `user.<user id>` (every staff socket of one account, console and monitor: only
`access.revoked`), `agents` (every online agent: the unrouted queue and changes of status), `team.<id>` (the console
sockets of a team's members who are not supervisors: that team's queue), `supervisors` (supervisors'
console sockets: every team's queue), `monitor` (supervisors: everything, and `monitor.figures`: agents'
loads and queues' waits, recomputed once per transaction that changed them), `staff-contact.<contact id>`
(the staff viewing any conversation of that contact: `contact.changed` whenever the one lead writer, the
consent, the lead card or a meeting changes; the sidebar fetches the new data through the console API).
Nothing staff-only is ever sent to a `conversation.<id>` group, which the contact's sockets join.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict
from uuid import UUID

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations import teams
from conversations.models import (
    Contact,
    Conversation,
    InternalNote,
    Label,
    Message,
    Sender,
    conversation_group,
)
from talia.redis_client import breaker

logger = logging.getLogger(__name__)

AGENTS_GROUP = "agents"
MONITOR_GROUP = "monitor"
SUPERVISORS_GROUP = "supervisors"


class Citation(TypedDict):
    url: str
    title: str


class Attachment(TypedDict):
    index: int  # its place in the message's attachments: the download links name it
    content_type: str
    stored: bool  # downloaded from the provider yet (uploads: always)
    name: NotRequired[str]  # the sender's file name (uploads)
    size: NotRequired[int]
    url: NotRequired[str]  # only to the widget: a signed, short-lived download path (channels_web.files)


class Location(TypedDict):
    latitude: float
    longitude: float
    label: str
    address: str


class MessagePayload(TypedDict):
    id: str
    conversation_id: str
    seq: int
    direction: str
    sender: str
    agent_name: str | None
    text: str
    content_type: str
    created: str
    citations: list[Citation]
    # Only on messages that carry them (files, WhatsApp locations): never the provider's URL.
    attachments: NotRequired[list[Attachment]]
    location: NotRequired[Location]


class MessageNew(TypedDict):
    type: Literal["message.new"]
    conversation_id: str
    message: MessagePayload
    # For a reply the team or the assistant sent (inbox.send): the conversation's status once it was stored
    # and, for the assistant's, the model response that wrote it, so that a door waiting for the reply
    # (conversations.waiting) answers without reading them back.
    status: NotRequired[str]
    response_id: NotRequired[str]


class MessageDelta(TypedDict):
    """A piece of the assistant's reply as the model writes it (conversations.assistant.streaming).

    Never stored: the reply is stored whole and announced by `message.new` under the id `stream` names.
    `seq` counts this stream's deltas from 1; `reset` drops what the stream showed before this text.
    """

    type: Literal["message.delta"]
    conversation_id: str
    stream: str
    seq: int
    text: str
    reset: bool


class LabelPayload(TypedDict):
    id: int
    name: str
    colour: str


class LabelsChanged(TypedDict):
    """The labels a conversation has now (staff only: never on the contact's sockets)."""

    type: Literal["labels.changed"]
    conversation_id: str
    labels: list[LabelPayload]


ConversationEventType = Literal[
    "conversation.opened",
    "queue.added",
    "queue.removed",
    "handoff.requested",
    "handoff.accepted",
    "handoff.cancelled",
    "handoff.expired",
    "brief.ready",
    "conversation.handed_back",
    "conversation.closed",
    "summary.ready",
    "end.requested",
    "end.declined",
    "conversation.transferred",
    "conversation.assigned",
]


class ConversationChanged(TypedDict):
    type: ConversationEventType
    conversation_id: str
    channel: str
    status: str
    agent_name: str | None


class PreviewLine(TypedDict):
    sender: str  # the console labels it in the agent's language
    text: str


class QueueAdded(ConversationChanged):
    # Who is waiting, as the console lists them (name, email, phone, or the channel's "visitor" label),
    # and the last few messages, so the live row reads like a rendered one from the first second.
    contact_name: str
    preview: list[PreviewLine]
    out_of_hours: bool  # asked for while the team is away: it waits until the next opening
    team_id: int | None  # the team whose queue it waits in (conversations.teams); None: everyone's
    team_name: str | None
    queued_at: str  # since when it waits (ISO 8601): now, or the pending hand-off's start when it moved queues


class Transferred(ConversationChanged):
    """Moved to another agent (`to_agent_id`) or back to a team's queue (`to_team_id`)."""

    to_agent_id: int | None
    to_team_id: int | None
    team_name: str | None


class Typing(TypedDict):
    type: Literal["typing"]
    conversation_id: str
    sender: str
    active: bool


class NotePayload(TypedDict):
    id: str
    conversation_id: str
    kind: str
    author_name: str | None
    recipient_name: str | None
    text: str
    created: str


class NoteAdded(TypedDict):
    type: Literal["note.added"]
    conversation_id: str
    note: NotePayload


class AgentSummary(TypedDict):
    id: int
    name: str | None
    state: NotRequired[str]  # online or away (the state the agent chose), when the sender knows it


class AgentsOnline(TypedDict):
    type: Literal["agents.online"]
    agents: list[AgentSummary]


class MessageStatus(TypedDict):
    """An outbound message's delivery moved (delivery.deliver, delivery.record_status). Staff only: the
    error may name provider details the contact must not see."""

    type: Literal["message.status"]
    conversation_id: str
    message_id: str
    seq: int
    status: str
    error: str


class AccessRevoked(TypedDict):
    """The account may have lost a right (conversations/console/access.py): its staff sockets check again."""

    type: Literal["access.revoked"]


class ConsentChanged(TypedDict):
    """The contact answered the consent question, in the widget's notice or in the dialogue."""

    type: Literal["consent.changed"]
    consent: str | None  # granted | declined
    version: str


class OfferMade(TypedDict):
    """A queued conversation offered to this agent (conversations.assignment): accept before `expires_at`."""

    type: Literal["offer.made"]
    offer_id: int
    conversation_id: str
    channel: str
    contact_name: str
    team_name: str | None
    expires_at: str
    timeout_s: int


class OfferWithdrawn(TypedDict):
    """The offer is no longer open: `reason` is accepted, declined, expired or withdrawn."""

    type: Literal["offer.withdrawn"]
    offer_id: int
    conversation_id: str
    reason: str


class ContactChanged(TypedDict):
    """The contact's details, consent, lead card or meetings changed (staff only: the sidebar fetches them)."""

    type: Literal["contact.changed"]
    contact_id: str


class AgentLoad(TypedDict):
    id: int
    load: int  # conversations the agent handles now


class QueueFigure(TypedDict):
    team_id: int | None  # None: the unrouted queue
    waiting: int
    oldest: str | None  # since when the oldest pending hand-off waits (ISO 8601)


class MonitorFigures(TypedDict):
    """The monitor's live figures: every agent's load and every queue's wait (only those not empty)."""

    type: Literal["monitor.figures"]
    agents: list[AgentLoad]
    queues: list[QueueFigure]


RealtimeEvent = (
    OfferMade
    | OfferWithdrawn
    | MessageNew
    | MessageDelta
    | ConversationChanged
    | Typing
    | NoteAdded
    | AgentsOnline
    | AccessRevoked
    | MessageStatus
    | ConsentChanged
    | LabelsChanged
    | MonitorFigures
    | ContactChanged
)


def contact_group(contact_id: object) -> str:
    """Every socket of one contact (a visitor's widget tabs): hears of conversations they open."""
    return f"contact.{contact_id}"


def staff_group(conversation_id: object) -> str:
    """The staff watching one conversation; the contact's sockets never join it."""
    return f"staff.{conversation_id}"


def staff_contact_group(contact_id: object) -> str:
    """The staff viewing any conversation of one contact (their sidebar shows the contact)."""
    return f"staff-contact.{contact_id}"


def agent_group(user_id: object) -> str:
    """Every console socket of one agent."""
    return f"agent.{user_id}"


def team_group(team_id: object) -> str:
    """The console sockets of a team's members (not supervisors, who are in `supervisors`)."""
    return f"team.{team_id}"


def queue_groups(team_id: object | None) -> list[str]:
    """Who hears that a conversation joined a queue: its team and the supervisors, or every agent."""
    if team_id is None:
        return [AGENTS_GROUP, MONITOR_GROUP]
    return [team_group(team_id), SUPERVISORS_GROUP, MONITOR_GROUP]


def user_group(user_id: object) -> str:
    """Every staff socket (console and monitor) of one account: told when its access is revoked."""
    return f"user.{user_id}"


def consent_changed(contact: Contact) -> ConsentChanged:
    return {
        "type": "consent.changed",
        "consent": contact.consent_state,
        "version": contact.consent_text_version or settings.TALIA_CONSENT_VERSION,
    }


def publish_consent(contact: Contact) -> None:
    """Every socket of the contact hears the new answer (the widget's notice goes away), and the staff
    viewing their conversations that the contact changed (the sidebar's consent)."""
    publish([contact_group(contact.pk)], consent_changed(contact))
    publish_contact_changed(contact.pk)


def access_revoked() -> AccessRevoked:
    return {"type": "access.revoked"}


def agent_name(user: object | None) -> str | None:
    if user is None:
        return None
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return full_name or getattr(user, "username", None)


def message_payload(message: Message) -> MessagePayload:
    """The public shape of a message: never the internal metadata (IP, user agent...)."""
    payload: MessagePayload = {
        "id": str(message.id),
        "conversation_id": str(message.conversation_id),
        "seq": message.seq,
        "direction": message.direction,
        "sender": message.sender,
        "agent_name": agent_name(message.agent),
        "text": message.text,
        "content_type": message.content_type,
        "created": message.created.isoformat(),
        "citations": _citations(message.metadata.get("citations")),
    }
    if attachments := _attachments(message.metadata.get("attachments")):
        payload["attachments"] = attachments
    if (location := _location(message.metadata.get("location"))) is not None:
        payload["location"] = location
    return payload


def _attachments(value: object) -> list[Attachment]:
    """What a channel stored of a message's files (conversations.attachments), without the provider's URL
    or the storage name."""
    attachments: list[Attachment] = []
    for index, item in enumerate(value if isinstance(value, list) else []):
        if not isinstance(item, dict):
            continue
        attachment: Attachment = {
            "index": index,
            "content_type": str(item.get("content_type") or "")[:100],
            "stored": bool(item.get("stored")),
        }
        if item.get("name"):
            attachment["name"] = str(item["name"])[:200]
        if isinstance(item.get("size"), int):
            attachment["size"] = item["size"]
        attachments.append(attachment)
    return attachments


def _location(value: object) -> Location | None:
    if not isinstance(value, dict):
        return None
    try:
        return {
            "latitude": float(value["latitude"]),
            "longitude": float(value["longitude"]),
            "label": str(value.get("label") or "")[:200],
            "address": str(value.get("address") or "")[:300],
        }
    except (KeyError, TypeError, ValueError):
        return None


def _citations(value: object) -> list[Citation]:
    """Only well-formed http(s) links, whatever an engine stored."""
    citations: list[Citation] = []
    for item in value if isinstance(value, list) else []:
        url = item.get("url") if isinstance(item, dict) else None
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            citations.append({"url": url, "title": str(item.get("title") or "")[:200]})
    return citations


def note_payload(note: InternalNote) -> NotePayload:
    return {
        "id": str(note.id),
        "conversation_id": str(note.conversation_id),
        "kind": note.kind,
        "author_name": agent_name(note.author),
        "recipient_name": agent_name(note.recipient),
        "text": note.text,
        "created": note.created.isoformat(),
    }


def note_added(note: InternalNote) -> NoteAdded:
    return {"type": "note.added", "conversation_id": str(note.conversation_id), "note": note_payload(note)}


def label_payload(label: Label) -> LabelPayload:
    return {"id": label.pk, "name": label.name, "colour": label.colour}


def labels_changed(conversation_id: object, labels: list[Label]) -> LabelsChanged:
    return {
        "type": "labels.changed",
        "conversation_id": str(conversation_id),
        "labels": [label_payload(label) for label in labels],
    }


def agents_online(agents: list[object], states: dict[int, str] | None = None) -> AgentsOnline:
    summaries: list[AgentSummary] = []
    for agent in agents:
        summary: AgentSummary = {"id": int(getattr(agent, "pk", 0)), "name": agent_name(agent)}
        if states is not None and summary["id"] in states:
            summary["state"] = states[summary["id"]]
        summaries.append(summary)
    return {"type": "agents.online", "agents": summaries}


def typing(conversation_id: object, sender: str, active: bool) -> Typing:
    return {"type": "typing", "conversation_id": str(conversation_id), "sender": sender, "active": active}


def message_new(message: Message, *, status: str | None = None) -> MessageNew:
    event: MessageNew = {
        "type": "message.new",
        "conversation_id": str(message.conversation_id),
        "message": message_payload(message),
    }
    if status is not None:
        event["status"] = str(status)
        if response_id := message.metadata.get("response_id"):
            event["response_id"] = str(response_id)
    return event


def message_delta(conversation_id: object, stream: object, seq: int, text: str, reset: bool) -> MessageDelta:
    return {
        "type": "message.delta",
        "conversation_id": str(conversation_id),
        "stream": str(stream),
        "seq": seq,
        "text": text,
        "reset": reset,
    }


def message_status(message: Message) -> MessageStatus:
    return {
        "type": "message.status",
        "conversation_id": str(message.conversation_id),
        "message_id": str(message.id),
        "seq": message.seq,
        "status": message.delivery_status,
        "error": message.delivery_error,
    }


def publish_message_status(message: Message) -> None:
    """Tell the staff watching the message's conversation, and the monitor, where its delivery stands."""
    publish([staff_group(message.conversation_id), MONITOR_GROUP], message_status(message))


def conversation_changed(event_type: ConversationEventType, conversation: Conversation) -> ConversationChanged:
    return {
        "type": event_type,
        "conversation_id": str(conversation.id),
        "channel": conversation.channel,
        "status": conversation.status,
        "agent_name": agent_name(conversation.assigned_agent),
    }


# As many as a rendered queue row shows (conversations.console.views.PREVIEW_MESSAGES).
QUEUE_PREVIEW_MESSAGES = 3


def queue_added(
    conversation: Conversation, *, out_of_hours: bool = False, queued_at: datetime | None = None
) -> QueueAdded:
    """A conversation joined the queue: what the console's live row needs to say who is waiting.
    `queued_at`: since when it waits, when not from now (it moved from another team's queue)."""
    changed = conversation_changed("queue.added", conversation)
    latest = conversation.messages.order_by("-seq")[:QUEUE_PREVIEW_MESSAGES]
    preview: list[PreviewLine] = [
        {"sender": message.sender, "text": message.text[:160]} for message in reversed(latest)
    ]
    team = conversation.team
    return {
        **changed,
        "contact_name": str(conversation.contact),
        "preview": preview,
        "out_of_hours": out_of_hours,
        "team_id": team.pk if team is not None else None,
        "team_name": team.name if team is not None else None,
        "queued_at": (queued_at or timezone.now()).isoformat(),
    }


def transferred(conversation: Conversation) -> Transferred:
    team = conversation.team
    return {
        **conversation_changed("conversation.transferred", conversation),
        "to_agent_id": conversation.assigned_agent_id if conversation.status == "agent" else None,
        "to_team_id": team.pk if team is not None and conversation.status == "queued" else None,
        "team_name": team.name if team is not None else None,
    }


MISSED_LIMIT = 200


def missed_messages(conversation_id: UUID | str, after: int, limit: int = MISSED_LIMIT) -> list[MessageNew]:
    """What a socket that last saw `after` missed of one conversation, oldest first, as pushes.

    Pushes can be lost (Redis down, a process's queue over capacity); clients that notice a gap in
    `seq`, or silence while a reply is due, ask for this instead of trusting the stream.
    """
    missed = Message.objects.select_related("agent").filter(conversation_id=conversation_id, seq__gt=after)
    return [message_new(message) for message in missed.order_by("seq")[:limit]]


def publish(groups: Iterable[str], event: RealtimeEvent) -> None:
    """Send `event` to every group once the current transaction commits (at once outside one).

    A change of who handles what or who waits where (FIGURE_EVENTS, sent to the monitor) also refreshes the
    monitor's figures once the transaction commits: once per transaction, however many such pushes it sent.
    """
    targets = list(dict.fromkeys(groups))
    transaction.on_commit(lambda: _publisher.send(targets, dict(event)))
    if MONITOR_GROUP in targets and event["type"] in FIGURE_EVENTS:
        _refresh_figures_after_commit()


# The pushes after which agents' loads or queues' waits may differ. Typing, messages and notes never
# recompute the figures.
FIGURE_EVENTS = frozenset(
    {
        "queue.added",
        "queue.removed",
        "handoff.accepted",
        "conversation.transferred",
        "conversation.closed",
        "conversation.handed_back",
    }
)


def monitor_figures() -> MonitorFigures:
    """Every agent's load and every non-empty queue's wait, as the monitor shows them (two queries)."""
    return {
        "type": "monitor.figures",
        "agents": [{"id": agent_id, "load": n} for agent_id, n in sorted(teams.loads().items())],
        "queues": [
            {"team_id": team_id, "waiting": n, "oldest": oldest.isoformat() if oldest else None}
            for team_id, (n, oldest) in teams.waiting_by_team().items()
        ],
    }


def _send_figures() -> None:
    _publisher.send([MONITOR_GROUP], dict(monitor_figures()))


def _refresh_figures_after_commit() -> None:
    _once_after_commit("monitor.figures", _send_figures)


class _OnceAfterCommit:
    """One on-commit action per transaction and key; `done` once it ran (a test's captured callbacks stay
    listed after they ran)."""

    def __init__(self, key: object, action: Callable[[], None]) -> None:
        self.key = key
        self.action = action
        self.done = False

    def __call__(self) -> None:
        self.done = True
        try:
            self.action()
        except Exception:  # a push is a hint: the data is stored, the pages catch up on reload
            logger.warning("Realtime push %s not sent", self.key, exc_info=True)


def _once_after_commit(key: object, action: Callable[[], None]) -> None:
    """Run `action` once the transaction commits, once however many times this is called in it.

    Skipped when the same key is already registered in a block still open (entries are `(savepoint ids,
    callback, robust)`); one registered in a savepoint since released is not trusted, so an action is
    never lost, at worst repeated.
    """
    connection = transaction.get_connection()
    open_blocks = set(connection.savepoint_ids)
    for sids, callback, *_ in connection.run_on_commit:
        if isinstance(callback, _OnceAfterCommit) and callback.key == key and not callback.done and sids <= open_blocks:
            return
    transaction.on_commit(_OnceAfterCommit(key, action))


def contact_changed(contact_id: object) -> ContactChanged:
    return {"type": "contact.changed", "contact_id": str(contact_id)}


def publish_contact_changed(contact_id: object) -> None:
    """The contact's details, consent, lead card or meetings changed: the staff viewing any of their
    conversations (`staff_contact_group`) hear `contact.changed`, once per transaction, and the sidebar asks
    the console API for the new data. No query and no personal data: it is on the message path."""
    group = staff_contact_group(contact_id)
    _once_after_commit(
        ("contact.changed", str(contact_id)), lambda: _publisher.send([group], dict(contact_changed(contact_id)))
    )


class _Publisher:
    """Runs every group_send on one event loop of its own, in a daemon thread.

    Callers are sync code in any context: a Celery task, a sync view, or sync_to_async inside an async
    view or consumer. Sending through the caller's loop (async_to_sync) would share that loop's Redis
    connections with the sockets it serves; a loop of our own keeps publishing independent of them.
    """

    SEND_TIMEOUT_S = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked child (Celery prefork) inherits the object but not the thread.
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(target=self._loop.run_forever, name="talia-realtime", daemon=True).start()
            return self._loop

    def send(self, groups: list[str], event: dict[str, object], after: _Delayed | None = None) -> None:
        """Send `event` to `groups` and wait for it (at most SEND_TIMEOUT_S); `after`: a push of the same
        groups that must reach them first."""
        layer = get_channel_layer()
        if layer is None:
            return
        if breaker.is_open():
            logger.info("Realtime push %s to %s dropped: Redis is failing", event.get("type"), groups)
            return
        sending = self._send_all(layer, groups, event) if after is None else after.then(layer, groups, event)
        future = asyncio.run_coroutine_threadsafe(sending, self._running_loop())
        try:
            future.result(self.SEND_TIMEOUT_S)
        except Exception as exc:
            future.cancel()
            if not breaker.record_failure(exc, "realtime push"):
                logger.warning("Realtime push %s to %s failed", event.get("type"), groups, exc_info=True)

    def send_later(self, delay_s: float, groups: list[str], event: dict[str, object]) -> _Delayed:
        """Send `event` in `delay_s` seconds unless cancelled first; the caller does not wait for it."""
        delayed = _Delayed(self, groups, event)
        loop = self._running_loop()
        loop.call_soon_threadsafe(loop.call_later, delay_s, delayed.fire)
        return delayed

    @staticmethod
    async def _send_all(layer: object, groups: list[str], event: dict[str, object]) -> None:
        for group in groups:
            try:
                await layer.group_send(group, event)  # type: ignore[attr-defined]
            except Exception as exc:
                if breaker.record_failure(exc, "realtime push"):
                    return  # the other groups would wait for the same timeout
                logger.warning("Realtime push %s to %s failed", event.get("type"), group, exc_info=True)
            else:
                breaker.record_success()


class _Delayed:
    """A push scheduled on the publisher's loop: `cancel()` before it fires and it is never sent.

    `fire` runs on the loop; `cancel` in the caller's thread; the lock decides which came first.
    """

    def __init__(self, publisher: _Publisher, groups: list[str], event: dict[str, object]) -> None:
        self._publisher = publisher
        self._groups = groups
        self._event = event
        self._lock = threading.Lock()
        self._state = "pending"  # then "cancelled" or "sent"
        self._sent: asyncio.Future[None] | None = None

    def fire(self) -> None:
        with self._lock:
            if self._state != "pending":
                return
            self._state = "sent"
        layer = get_channel_layer()
        if layer is None or breaker.is_open():
            return
        self._sent = asyncio.ensure_future(self._publisher._send_all(layer, self._groups, self._event))

    async def then(self, layer: object, groups: list[str], event: dict[str, object]) -> None:
        """Send `event` once this push has been sent (or failed): never overtaking it."""
        if self._sent is not None:
            await asyncio.wait([self._sent])
        await self._publisher._send_all(layer, groups, event)

    def cancel(self) -> bool:
        """True when it was not sent (and now never will be); False when it was, or is being, sent."""
        with self._lock:
            if self._state == "pending":
                self._state = "cancelled"
                return True
            return False


_publisher = _Publisher()

# A turn shorter than this shows no typing indicator: its reply arrives before a person would notice the
# dots, so neither the "typing" push nor its "stopped" counterpart is sent (two group sends fewer per
# turn for the worker, and two pushes fewer for every socket in the conversation, the waiting HTTP request
# among them). A model's turn (seconds) shows it after this delay.
TYPING_GRACE_S = 0.3


class AssistantTyping:
    """The assistant's typing indicator for one turn in a conversation's group, coalesced: `start()`
    schedules the "typing" push TYPING_GRACE_S later without waiting; `stop()` cancels it if it has not
    gone out yet, and otherwise sends the "stopped" push (and waits for it, so it precedes the reply's).

    Nothing is stored, so nothing waits for a commit (as `relay_typing`). Best effort, like every push.
    """

    def __init__(self, conversation_id: object, group: str) -> None:
        self._conversation_id = conversation_id
        self._group = group
        self._pending: _Delayed | None = None

    def start(self) -> None:
        if get_channel_layer() is None:
            return
        event = dict(typing(self._conversation_id, Sender.ASSISTANT, True))
        self._pending = _publisher.send_later(TYPING_GRACE_S, [self._group], event)

    def stop(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None or pending.cancel():
            return
        _publisher.send([self._group], dict(typing(self._conversation_id, Sender.ASSISTANT, False)), after=pending)


async def relay_typing(layer: Any, conversation_id: str, sender: str, active: bool) -> None:
    """Tell the conversation's group that `sender` started or stopped typing, from the caller's loop.

    The same event as conversations.inbox.typing (`typing()`), without its thread hop: nothing is
    stored, so nothing waits for a commit, and the socket's loop already holds the layer's connections.
    A failure is recorded on the Redis breaker and the indicator is lost (it is only a hint).
    """
    if layer is None or breaker.is_open():
        return
    event = typing(conversation_id, sender, active)
    try:
        await layer.group_send(conversation_group(conversation_id), dict(event))
    except Exception as exc:
        if not breaker.record_failure(exc, "typing relay"):
            logger.warning("Typing indicator for %s not relayed", conversation_id, exc_info=True)
        return
    breaker.record_success()
