"""The web chat's service layer: sessions, messages, history, closing, handoff and consent.

Views and the socket consumer parse and authorise; everything that reads or writes goes through here,
and every message goes through conversations.inbox like any other door.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.translation import gettext

from channels_web import events as web_events
from channels_web.models import WebchatSession
from conversations import csat, endchat, events, inbox, leadfields, profile, state
from conversations.assistant import statements
from conversations.assistant.tools import decline_consent, give_consent
from conversations.models import (
    OPEN_STATUSES,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Event,
    HandoffRequest,
    Message,
    Sender,
)
from talia import enqueue

logger = logging.getLogger("talia.webchat")

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
MAX_CONTENT = 4000
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_PAGE = 500  # the page address a message was written from, as kept (without query and fragment)


@dataclass(frozen=True)
class Visitor:
    """Who is talking: the widget's session id and where the request came from."""

    session_id: str
    ip: str = ""
    user_agent: str = ""
    origin: str = ""
    locale: str | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ip": self.ip or None, "user_agent": self.user_agent[:400]}
        if self.origin:
            data["origin"] = self.origin
        return data


# How often a visitor's session records that they are still around; not on every message.
SEEN_EVERY = timedelta(seconds=60)


def open_session(visitor: Visitor) -> WebchatSession:
    """The visitor's session row, with its contact (created with a `webchat_started` event on first contact).

    A known visitor costs one query: the session and its contact together; `last_seen_at` is written at
    most once every SEEN_EVERY.
    """
    return open_session_and_tell(visitor)[0]


def open_session_and_tell(visitor: Visitor) -> tuple[WebchatSession, bool]:
    """open_session(), and whether this call created the visitor's contact (then it has no conversation).

    A first-time visitor (no session, the usual case for no contact either) costs one transaction with
    no lookups and no savepoints: contact, identity, session and event inserted (7 statements with the
    session lookup, not 16); if any of them exists after all, it rolls back and the general way below
    runs.
    """
    now = timezone.now()
    session = _known_session(visitor.session_id)
    locale = inbox.normalise_locale(visitor.locale)
    if session is not None and not (locale and session.contact.locale != locale):
        if session.last_seen_at < now - SEEN_EVERY:
            WebchatSession.objects.filter(pk=session.pk).update(last_seen_at=now)
            session.last_seen_at = now
        return session, False
    if session is None:
        with contextlib.suppress(IntegrityError):
            return _first_session(visitor), True
    contact = inbox.ensure_contact(Channel.WEB, visitor.session_id, locale=visitor.locale)
    with transaction.atomic():
        session, created = WebchatSession.objects.get_or_create(
            session_id=visitor.session_id, defaults=_session_fields(visitor, contact)
        )
        if created:
            events.emit(
                web_events.WEBCHAT_STARTED, contact=contact, session_id=visitor.session_id, origin=visitor.origin
            )
        else:
            WebchatSession.objects.filter(pk=session.pk).update(last_seen_at=now)
            session.last_seen_at = now
    session.contact = contact
    return session, False


@functools.cache
def _known_session_sql() -> str:
    session_table, contact_table = WebchatSession._meta.db_table, Contact._meta.db_table
    columns = ", ".join(
        statements.select_list(table, statements.fields_of(model))
        for model, table in ((WebchatSession, session_table), (Contact, contact_table))
    )
    return (
        f"SELECT {columns} FROM {session_table} "  # noqa: S608 (names from the models)
        f"JOIN {contact_table} ON {contact_table}.{Contact._meta.pk.column} = {session_table}.contact_id "
        f"WHERE {session_table}.session_id = %s"
    )


def _known_session(session_id: str) -> WebchatSession | None:
    """The session with its contact, in one statement composed once per process (statements.py: on every
    visitor message, building it through the ORM cost more CPU than Postgres spent running it)."""
    with connection.cursor() as cursor:
        cursor.execute(_known_session_sql(), [session_id])
        row = cursor.fetchone()
    if row is None:
        return None
    session, contact = statements.instances(
        row, [(WebchatSession, statements.fields_of(WebchatSession)), (Contact, statements.fields_of(Contact))]
    )
    session.contact = contact
    return session


def _first_session(visitor: Visitor) -> WebchatSession:
    """Contact, identity, session and `webchat_started` for a visitor never seen (IntegrityError if seen)."""
    with transaction.atomic():
        contact = inbox.new_contact(Channel.WEB, visitor.session_id, locale=visitor.locale)
        session = WebchatSession.objects.create(session_id=visitor.session_id, **_session_fields(visitor, contact))
        events.emit(web_events.WEBCHAT_STARTED, contact=contact, session_id=visitor.session_id, origin=visitor.origin)
    session.contact = contact
    return session


def _session_fields(visitor: Visitor, contact: Contact) -> dict[str, Any]:
    return {
        "contact": contact,
        "ip": visitor.ip or None,
        "user_agent": visitor.user_agent[:400],
        "origin": visitor.origin[:200],
        "locale": contact.locale,
    }


def post_message(
    visitor: Visitor,
    content: str,
    client_message_id: str = "",
    page: str = "",
    *,
    on_stored: Callable[[Conversation], object] | None = None,
) -> inbox.Received:
    """Store the visitor's message, with the page it was written from and the browser in its metadata (the
    console's contact sidebar reads them from the contact's latest message: no extra write per message).

    `on_stored`: inbox.receive's hook (the REST API listens for the reply from there)."""
    session = open_session(visitor)
    external_id = f"{visitor.session_id}:{client_message_id}" if client_message_id else ""
    metadata = {**visitor.metadata, "page": page} if page else visitor.metadata
    received = inbox.receive(
        Channel.WEB,
        visitor.session_id,
        content,
        metadata,
        external_id,
        locale=visitor.locale,
        contact=session.contact,
        on_stored=on_stored,
    )
    if not received.duplicate and settings.TALIA_GEOLOCATION_API_URL and visitor.ip:
        # Best effort: while Redis fails the message simply goes without a location.
        enqueue.after_commit(
            "channels_web.tasks.geolocate_message", str(received.message.pk), visitor.ip, what="geolocation"
        )
    return received


def conversations_of(session_id: str) -> QuerySet[Conversation]:
    return Conversation.objects.filter(
        channel=Channel.WEB, contact__identities__channel=Channel.WEB, contact__identities__value=session_id
    )


def latest_conversation(session_id: str) -> Conversation | None:
    return conversations_of(session_id).order_by("-opened_at").first()


def open_conversation(session_id: str) -> Conversation | None:
    return conversations_of(session_id).filter(status__in=OPEN_STATUSES).first()


def messages_page(session_id: str, after: int, limit: int) -> tuple[Conversation | None, list[Message], bool]:
    """Messages of the session's latest conversation after `after`, oldest first, and whether more follow
    (the conversation comes with its contact, whose consent state the widget reads)."""
    conversation = conversations_of(session_id).select_related("contact").order_by("-opened_at").first()
    if conversation is None:
        return None, [], False
    rows = list(conversation.messages.select_related("agent").filter(seq__gt=after).order_by("seq")[: limit + 1])
    return conversation, rows[:limit], len(rows) > limit


def full_history(session_id: str) -> list[Message]:
    return list(
        Message.objects.select_related("agent")
        .filter(conversation__in=conversations_of(session_id))
        .order_by("created", "seq")
    )


def consent_of(session_id: str) -> str | None:
    """The session's contact's answer to the consent question ('granted', 'declined'), None if none yet."""
    contact = (
        Contact.objects.filter(identities__channel=Channel.WEB, identities__value=session_id)
        .only("consent_given_at", "consent_declined_at")
        .first()
    )
    return contact.consent_state if contact is not None else None


@dataclass(frozen=True)
class Closing:
    closed: bool
    already_closed: bool
    end_requested: bool


def close_session(visitor: Visitor, reason: str = "") -> Closing:
    """The visitor ends the chat: at once with the assistant, by asking first when an agent has it."""
    conversation = open_conversation(visitor.session_id)
    if conversation is None:
        _record_closure(visitor, reason)
        record_closure(visitor.session_id, CLOSED_BY_VISITOR)
        return Closing(closed=True, already_closed=True, end_requested=False)
    try:
        pending = endchat.request_end(conversation, reason=reason)
    except state.TransitionError:  # closed by someone else a moment ago
        pending = None
    # The visitor's "end" is what the session metrics count, whether or not an agent must agree first.
    _record_closure(visitor, reason)
    record_closure(visitor.session_id, CLOSED_BY_VISITOR)
    if pending is not None:
        return Closing(closed=False, already_closed=False, end_requested=True)
    return Closing(closed=True, already_closed=False, end_requested=False)


def _record_closure(visitor: Visitor, reason: str) -> None:
    session = WebchatSession.objects.filter(session_id=visitor.session_id).select_related("contact").first()
    if session is not None and session.closed_at is None:
        contact: Contact = session.contact
        WebchatSession.objects.filter(pk=session.pk, closed_at__isnull=True).update(
            closed_at=timezone.now(),
            close_reason=reason[:200],
            message_count=Message.objects.filter(conversation__contact=contact, channel=Channel.WEB).count(),
            lead_captured=Event.objects.filter(contact=contact, name=events.LEAD_CAPTURED.name).exists(),
        )


# --- Session closures (dashboard figures) --------------------------------------------------------------

CLOSED_BY_VISITOR = "visitor"
PAGE_LEFT = "page_left"
INACTIVITY = "inactivity"


def last_activity(session: WebchatSession) -> datetime:
    """When the visitor last did something: their last web message, or the session's `last_seen_at`."""
    last_message = (
        Message.objects.filter(conversation__contact=session.contact_id, channel=Channel.WEB, sender=Sender.CONTACT)
        .order_by("-created")
        .values_list("created", flat=True)
        .first()
    )
    return max(session.last_seen_at, last_message) if last_message else session.last_seen_at


def record_closure(session_id: str, reason: str) -> bool:
    """Record one `session_closed` event for the session; whether one was recorded.

    A session closes once per stretch of activity: a page leave or inactivity is recorded only when no
    closure was recorded since the visitor's last activity (so browsing five pages of the site after the
    last message counts one page leave), the visitor's own "end" only when no "end" was (a double click
    or a retry counts once). Nothing else happens: the conversation stays as it is and nobody is told.
    """
    with transaction.atomic():
        # The session row's lock makes concurrent closures (a beacon racing the end button) take turns.
        session = WebchatSession.objects.select_for_update().filter(session_id=session_id).first()
        if session is None:
            return False
        since = last_activity(session)
        earlier = Event.objects.filter(
            name=web_events.SESSION_CLOSED.name,
            contact=session.contact_id,
            payload__session_id=session_id,
            created__gte=since,
        )
        if reason == CLOSED_BY_VISITOR:
            earlier = earlier.filter(payload__reason=CLOSED_BY_VISITOR)
        if earlier.exists():
            return False
        conversation = open_conversation(session_id) or latest_conversation(session_id)
        events.emit(
            web_events.SESSION_CLOSED,
            conversation=conversation,
            contact=None if conversation else Contact(pk=session.contact_id),
            session_id=session_id,
            reason=reason,
        )
    return True


def page_left(session_id: str) -> bool:
    """The visitor left the page (the widget's beacon): a closure, and nothing else."""
    return record_closure(session_id, PAGE_LEFT)


def close_idle_sessions(idle: timedelta, *, now: datetime | None = None) -> int:
    """Record an `inactivity` closure for each session idle for `idle` (seen within the last day before
    that, so a long-gone session is looked at once and never again); how many were recorded."""
    cutoff = (now or timezone.now()) - idle
    closed_since_seen = (
        Event.objects.filter(
            name=web_events.SESSION_CLOSED.name, contact=OuterRef("contact"), created__gte=OuterRef("last_seen_at")
        )
        .annotate(closed_session=KT("payload__session_id"))
        .filter(closed_session=OuterRef("session_id"))
    )
    candidates = (
        WebchatSession.objects.filter(last_seen_at__lt=cutoff, last_seen_at__gte=cutoff - timedelta(days=1))
        .filter(~Exists(closed_since_seen))
        .values_list("session_id", flat=True)
    )
    recorded = 0
    for session_id in candidates.iterator(chunk_size=500):
        session = WebchatSession.objects.filter(session_id=session_id).first()
        if session is None or last_activity(session) >= cutoff:
            continue
        recorded += record_closure(session_id, INACTIVITY)
    return recorded


def request_person(visitor: Visitor) -> Conversation:
    """The visitor asked for a person: queue their conversation (opening one if needed). Idempotent."""
    open_session(visitor)
    _, conversation = inbox.ensure_conversation(Channel.WEB, visitor.session_id, locale=visitor.locale)
    if conversation.status == ConversationStatus.BOT:
        with contextlib.suppress(state.TransitionError):  # a concurrent request got there first
            state.request_handoff(
                conversation, requested_by=HandoffRequest.RequestedBy.CONTACT, reason="The visitor asked for a person."
            )
    return Conversation.objects.get(pk=conversation.pk)


def stop_waiting(visitor: Visitor) -> Conversation | None:
    """The visitor no longer wants a person: a queued conversation goes back to the assistant. Idempotent."""
    conversation = open_conversation(visitor.session_id)
    if conversation is not None and conversation.status == ConversationStatus.QUEUED:
        with contextlib.suppress(state.TransitionError):  # an agent claimed it a moment ago
            state.cancel_handoff(conversation)
        conversation.refresh_from_db()
    return conversation


def record_consent(visitor: Visitor, granted: bool) -> Contact:
    session = open_session(visitor)
    if granted:
        return give_consent(session.contact_id)
    return decline_consent(session.contact_id)


# --- After the chat: rating and transcript -------------------------------------------------------------

# Transcript emails per visitor session: enough to retry with a corrected address, too few to spam anyone.
TRANSCRIPT_LIMIT = (3, 3600)


class NoConversationError(Exception):
    """The session has no conversation (or not the one named)."""


class NoEmailError(Exception):
    """No address was given and the contact has none on file."""


def visitor_conversation(session_id: str, conversation_id: UUID | None = None) -> Conversation:
    """The session's conversation `conversation_id` (its latest when None), with its contact.

    Raises NoConversationError for a conversation of someone else, exactly as for one that does not exist.
    """
    found = conversations_of(session_id).select_related("contact")
    conversation = found.filter(pk=conversation_id).first() if conversation_id else found.order_by("-opened_at").first()
    if conversation is None:
        raise NoConversationError()
    return conversation


def rate(session_id: str, conversation_id: UUID | None, score: int, comment: str) -> csat.Rated:
    """The visitor rates their conversation (NoConversationError, csat.NotEndedError)."""
    return csat.rate_conversation(visitor_conversation(session_id, conversation_id), score, comment)


def may_store_personal_data(contact: Contact) -> bool:
    """The consent rules of the lead fields: a yes stands; without an answer only while consent is not
    required; a no, never."""
    state_ = contact.consent_state
    return state_ == "granted" or (state_ is None and not settings.TALIA_REQUIRE_CONSENT)


def email_transcript(session_id: str, email: str = "", conversation_id: UUID | None = None) -> bool:
    """Queue the transcript of the session's conversation `conversation_id` (its latest when None) for
    `email`, or the contact's address on file.

    Sending to an address the visitor types is what they asked for, so it never needs consent; keeping it
    on the contact does (may_store_personal_data), and an address on file is never replaced. False when
    the same transcript was just queued for that address (a double click). Raises NoConversationError,
    NoEmailError.
    """
    conversation = visitor_conversation(session_id, conversation_id)
    contact = conversation.contact
    address = email or contact.email
    if not address:
        raise NoEmailError()
    if email and may_store_personal_data(contact):
        with contextlib.suppress(leadfields.LeadFieldError):  # a refusal only means it is not kept
            leadfields.write_lead_fields(conversation, {"email": email}, only_missing=True)
    return csat.request_transcript(conversation, address)


# Why a visitor leaves their details, and what each purpose requires besides the profile's rules.
PRECHAT, CALLBACK = "prechat", "callback"


class DetailsError(ValueError):
    """Details the widget's forms cannot store: `fields` says which and why (in the visitor's language)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in fields.items()))
        self.fields = fields


# What the visitor reads about a value the one writer refused (its own messages speak to the model).
INVALID = {
    "full_name": lambda: gettext("Write your name."),
    "email": lambda: gettext("This email address is not valid."),
    "phone": lambda: gettext("This phone number is not valid; include the country code, like +34 600 123 456."),
}


def leave_details(visitor: Visitor, purpose: str, values: dict[str, str]) -> Contact:
    """The visitor's pre-chat form or out-of-hours "get back to me" form, stored on their contact.

    The pre-chat form must carry the fields the profile requires; the callback form an email or a phone.
    Values go through leadfields' one writer (normalised, consent checked: ConsentRequired when the
    contact has not consented while consent is required), into the conversation opened if need be, so
    the queue shows the name. Blank values are ignored; nothing is stored unless everything is valid.
    """
    given = {name: value for name, value in values.items() if value.strip()}
    problems: dict[str, str] = {}
    if purpose == PRECHAT:
        business = profile.current()
        unknown = set(given) - set(business.prechat_fields)
        problems.update({name: gettext("This form does not ask for it.") for name in unknown})
        problems.update(
            {name: gettext("This field is required.") for name in business.prechat_required if name not in given}
        )
    elif not (given.get("email") or given.get("phone")):
        problems["email"] = gettext("Leave an email or a phone number.")
    for name, value in given.items():
        if name not in problems:
            try:
                leadfields.normalise(name, value)
            except leadfields.LeadFieldError:
                problems[name] = INVALID[name]()
    if problems:
        raise DetailsError(problems)
    if not given:  # an optional form left blank: nothing to store, no conversation to open
        return open_session(visitor).contact
    open_session(visitor)
    _, conversation = inbox.ensure_conversation(Channel.WEB, visitor.session_id, locale=visitor.locale)
    return leadfields.write_lead_fields(conversation, given).contact
