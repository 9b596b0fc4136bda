"""The events registry and the one way to record an event.

Invariants:
- `Event.name` is an open string; what may be recorded is what some app declared here, in its
  AppConfig.ready(), from an `events.py` of its own (the core's are below; `channels_web.events`,
  `leads.events`). Adding an event needs no core migration and no edit in `conversations/`.
- `emit()` is the only writer of `Event` rows. It raises on an undeclared name (ImproperlyConfigured)
  and on a payload whose keys differ from the declaration (ValueError), in tests and in production
  alike: a wrong event is a bug, and the transaction it is part of is rolled back rather than storing
  rows reports cannot read.
- Always called inside the transaction of the change the event describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from conversations.assistant import statements
from conversations.models import Contact, Conversation, Event


@dataclass(frozen=True)
class EventSpec:
    """An event an app records: its name, what it means, and the keys its payload always has.

    `optional_keys` may be present too (e.g. `card_id` on `lead_captured` when the leads pipeline
    recorded it); any other key is an error.
    """

    name: str
    description: str
    payload_keys: frozenset[str] = frozenset()
    optional_keys: frozenset[str] = frozenset()

    def check(self, payload: dict[str, Any]) -> None:
        keys = set(payload)
        missing = self.payload_keys - keys
        unknown = keys - self.payload_keys - self.optional_keys
        if missing or unknown:
            raise ValueError(
                f"Event {self.name!r}: payload keys {sorted(keys)} do not match the declaration"
                f" (missing {sorted(missing)}, undeclared {sorted(unknown)})."
            )


def spec(name: str, description: str, *keys: str, optional: tuple[str, ...] = ()) -> EventSpec:
    """Shorthand for declarations: `spec("lead_closed", "A lead ...", "card_id", "stage")`."""
    return EventSpec(name, description, frozenset(keys), frozenset(optional))


class EventRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, EventSpec] = {}

    def declare(self, *specs: EventSpec) -> None:
        for event in specs:
            if self._specs.get(event.name, event) != event:
                raise ImproperlyConfigured(f"An event named {event.name!r} is already declared differently.")
            self._specs[event.name] = event

    def get(self, name: str) -> EventSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ImproperlyConfigured(
                f"Event {name!r} is not declared: declare it in its app's events.py (conversations.events)."
            ) from None

    def all(self) -> list[EventSpec]:
        return sorted(self._specs.values(), key=lambda event: event.name)

    def label(self, name: str) -> str:
        """The description for the admin; an undeclared (older) name shows as itself."""
        event = self._specs.get(name)
        return event.description if event else name


events = EventRegistry()
declare = events.declare


def emit(
    event: EventSpec | str,
    *,
    conversation: Conversation | None = None,
    contact: Contact | None = None,
    **payload: Any,
) -> Event:
    """Store one declared event; the contact defaults to the conversation's."""
    name = event.name if isinstance(event, EventSpec) else event
    declared = events.get(name)
    if isinstance(event, EventSpec) and event != declared:
        raise ImproperlyConfigured(f"Event {name!r} is emitted with a spec that differs from its declaration.")
    declared.check(payload)
    if contact is not None:
        return statements.create(Event(name=name, conversation=conversation, contact=contact, payload=payload))
    # By id: reading `conversation.contact` would cost a query for a row the event does not need.
    contact_id = conversation.contact_id if conversation is not None else None
    return statements.create(Event(name=name, conversation=conversation, contact_id=contact_id, payload=payload))


# --- The core's events --------------------------------------------------------------------------------

CONVERSATION_OPENED = spec("conversation_opened", "Conversation opened", "channel")
MESSAGE_RECEIVED = spec("message_received", "Message received", "message_id", "seq")
MESSAGE_SENT = spec("message_sent", "Message sent", "message_id", "seq", "sender")
LEAD_CAPTURED = spec(
    "lead_captured",
    "Lead captured",
    "full_name",
    "email",
    "phone",
    "company",
    optional=("card_id",),
)
HANDOFF_REQUESTED = spec("handoff_requested", "Handoff requested", "requested_by", "reason")
HANDOFF_CANCELLED = spec("handoff_cancelled", "Handoff cancelled")
HANDOFF_EXPIRED = spec("handoff_expired", "Handoff expired")
AGENT_ASSIGNED = spec("agent_assigned", "Agent assigned", "agent_id")
# Auto-assignment (conversations.assignment): offered to one agent, who declined it or let it expire.
ASSIGNMENT_OFFERED = spec("assignment_offered", "Offered to an agent", "agent_id", "offer_id", "expires_at")
OFFER_DECLINED = spec("offer_declined", "Offer declined by the agent", "agent_id", "offer_id")
OFFER_EXPIRED = spec("offer_expired", "Offer not answered in time", "agent_id", "offer_id")
TAKEN_OVER = spec("taken_over", "Taken over from the assistant by an agent", "agent_id")
HANDED_BACK = spec("handed_back", "Handed back to the assistant", "agent_ids")
# An agent edited the contact's details in the console sidebar (names of the fields, never their values).
CONTACT_EDITED = spec("contact_edited", "Contact details edited by an agent", "agent_id", "fields", "replaced")
LABELS_CHANGED = spec("labels_changed", "Labels changed", "added", "removed", optional=("agent_id",))
# Queued for a team's queue (conversations.teams): `by` is "reason" (a keyword of the handoff reason) or "channel".
ROUTED = spec("routed", "Routed to a team", "team_id", "team", "by")
# To another agent (`to_agent_id`) or to a team's queue (`to_team_id`), with the transferring note; a waiting
# conversation moved between queues has no `from_agent_id`. `from_team_id`: the team it was with (or None).
TRANSFERRED = spec(
    "transferred",
    "Transferred",
    "from_agent_id",
    "to_agent_id",
    "from_team_id",
    "to_team_id",
    "note_id",
    "by_id",
)
CONVERSATION_CLOSED = spec("conversation_closed", "Conversation closed", "ended_by", "reason")
# The contact rated the conversation (CSAT 1-5); `updated` when it replaced an earlier rating.
CSAT_SUBMITTED = spec("csat_submitted", "Conversation rated", "score", "has_comment", "updated")

CORE_EVENTS = (
    CONVERSATION_OPENED,
    MESSAGE_RECEIVED,
    MESSAGE_SENT,
    LEAD_CAPTURED,
    HANDOFF_REQUESTED,
    HANDOFF_CANCELLED,
    HANDOFF_EXPIRED,
    AGENT_ASSIGNED,
    ASSIGNMENT_OFFERED,
    OFFER_DECLINED,
    OFFER_EXPIRED,
    TAKEN_OVER,
    HANDED_BACK,
    CONVERSATION_CLOSED,
    CSAT_SUBMITTED,
    LABELS_CHANGED,
    ROUTED,
    TRANSFERRED,
    CONTACT_EDITED,
)
