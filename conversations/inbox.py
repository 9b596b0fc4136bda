"""The inbox: the single way messages enter and leave a conversation.

Every door (web widget, WhatsApp webhook, voice turn) calls `receive()`, on a channel registered in
conversations.registry.channel_specs (any other is refused); the assistant and agents call `send()`,
whose message is handed to the channel's deliverer, or stored `failed` with the reason when a pushed
channel has none (never `sent`). Both store the message with the next per-conversation number under the conversation's row
lock, record the event in the same transaction, and only after commit push it in realtime and hand it
on: to the assistant (inbound, while the bot has the conversation) or to the channel's deliverer. A
hand-off that Redis refuses (or that its breaker skips) is marked not queued for the workers' recovery
sweep; it never fails the caller, whose message is already stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from conversations import events, realtime
from conversations.assistant import statements
from conversations.models import (
    OPEN_STATUSES,
    AssistantRun,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Locale,
    Message,
    Sender,
    conversation_group,
)
from conversations.registry import channel_specs
from talia import enqueue, observability

logger = logging.getLogger(__name__)

# Queued by name (talia.enqueue): conversations.tasks imports this module.
TURN_TASK = "conversations.tasks.run_assistant_turn"
DELIVERY_TASK = "conversations.tasks.deliver_message"

MAX_IDENTITY_LENGTH = 200
MAX_EXTERNAL_ID_LENGTH = 200


class InboxError(ValueError):
    """The caller passed something the inbox cannot store; the message says what."""


class ConversationClosedError(InboxError):
    pass


@dataclass(frozen=True)
class Received:
    message: Message
    conversation: Conversation
    contact: Contact
    # True when `external_id` had been stored before: nothing new was written or sent.
    duplicate: bool = False
    # True when this message opened the conversation.
    opened: bool = False


def normalise_locale(value: str | None) -> str | None:
    """'en-US' -> 'en'; None for anything TalIA does not speak."""
    if not value:
        return None
    code = value.strip().replace("_", "-").split("-")[0].lower()
    return code if code in Locale.values else None


def receive(
    channel: str,
    identity: str,
    text: str,
    metadata: dict[str, Any] | None = None,
    external_id: str = "",
    *,
    content_type: str = "text",
    locale: str | None = None,
    display_name: str = "",
    contact: Contact | None = None,
    assistant_turn: bool = True,
    on_stored: Callable[[Conversation], object] | None = None,
) -> Received:
    """Store an inbound message from the contact known on `channel` as `identity`.

    `assistant_turn=False`: the door's own model already answers it (the voice channel's realtime
    bridge), so no turn of the text assistant is recorded or queued for this message.

    `on_stored(conversation)` is called inside the transaction once the message is stored and its push
    registered for after the commit, before its turn is: an after-commit callback it registers runs
    after the push and ahead of the turn's enqueue (the web door starts listening for the reply there,
    conversations.waiting). Not called for a duplicate.

    Finds or creates the contact and its open conversation on that channel (`contact`: the door already
    looked that contact up). A message whose `external_id` was already stored for this channel (a webhook
    retried by the provider) is returned as it is, with `duplicate=True`: the database's unique
    constraint decides, so concurrent copies store one message. Safe under concurrent callers.
    """
    _check_channel(channel)
    identity = identity.strip()
    if not identity or len(identity) > MAX_IDENTITY_LENGTH:
        raise InboxError(f"The contact identity must be 1 to {MAX_IDENTITY_LENGTH} characters.")
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise InboxError(f"The external id must be at most {MAX_EXTERNAL_ID_LENGTH} characters.")
    try:
        with transaction.atomic():
            return _store_inbound(
                channel,
                identity,
                text,
                metadata or {},
                external_id,
                content_type=content_type,
                locale=normalise_locale(locale),
                display_name=display_name[:200],
                known=contact,
                assistant_turn=assistant_turn,
                on_stored=on_stored,
            )
    except IntegrityError:
        # Another request stored the same provider message id first.
        if external_id and (existing := _stored(channel, external_id)) is not None:
            return existing
        raise


def ensure_conversation(
    channel: str, identity: str, *, locale: str | None = None, display_name: str = ""
) -> tuple[Contact, Conversation]:
    """The contact known on `channel` as `identity` and their open conversation, created if need be.

    For doors that act before the contact has said anything (a visitor asking for a person first).
    """
    _check_channel(channel)
    with transaction.atomic():
        contact = _contact_for(channel, identity, locale=normalise_locale(locale), display_name=display_name)
        conversation, opened = _open_conversation(contact, channel)
        if opened:
            events.emit(events.CONVERSATION_OPENED, conversation=conversation, channel=channel)
            _publish_opened(conversation)
    return contact, conversation


def ensure_contact(channel: str, identity: str, *, locale: str | None = None) -> Contact:
    """The contact known on `channel` as `identity`, created (without a conversation) if need be."""
    _check_channel(channel)
    with transaction.atomic():
        return _contact_for(channel, identity, locale=normalise_locale(locale), display_name="")


def new_contact(channel: str, identity: str, *, locale: str | None = None) -> Contact:
    """A new contact known on `channel` as `identity`, created without looking for one first.

    For a door that has just found no trace of `identity` (the web chat's first-time visitor) and runs
    this inside its own transaction: when the identity exists after all (a concurrent first request,
    or a contact kept without its session), the INSERT raises IntegrityError and the caller's whole
    transaction rolls back, for it to take the ensure_contact way instead.
    """
    _check_channel(channel)
    contact = Contact.objects.create(locale=normalise_locale(locale) or settings.LANGUAGE_CODE)
    ContactIdentity.objects.create(contact=contact, channel=channel, value=identity)
    return contact


def _check_channel(channel: str) -> None:
    """Only registered channels (conversations.registry.channel_specs) open contacts and conversations."""
    if channel not in channel_specs:
        raise InboxError(f"Unknown channel {channel!r}.")


def _publish_opened(conversation: Conversation) -> None:
    realtime.publish(
        [realtime.MONITOR_GROUP, realtime.contact_group(conversation.contact_id)],
        realtime.conversation_changed("conversation.opened", conversation),
    )


def _stored(channel: str, external_id: str) -> Received | None:
    message = (
        Message.objects.select_related("conversation__contact").filter(channel=channel, external_id=external_id).first()
    )
    if message is None:
        return None
    return Received(message, message.conversation, message.conversation.contact, duplicate=True)


def _store_inbound(
    channel: str,
    identity: str,
    text: str,
    metadata: dict[str, Any],
    external_id: str,
    *,
    content_type: str,
    locale: str | None,
    display_name: str,
    known: Contact | None,
    assistant_turn: bool = True,
    on_stored: Callable[[Conversation], object] | None = None,
) -> Received:
    contact = _contact_for(channel, identity, locale=locale, display_name=display_name, known=known)
    now = timezone.now()
    conversation, opened = _open_conversation(contact, channel, now)
    observability.bind_conversation(conversation)  # on this request's log lines from here on
    if locale:
        metadata = {"locale": locale, **metadata}
    message = _append(
        conversation,
        now,
        direction=Direction.INBOUND,
        sender=Sender.CONTACT,
        text=text,
        content_type=content_type,
        metadata=metadata,
        external_id=external_id,
        delivery_status=DeliveryStatus.RECEIVED,
    )
    if opened:
        events.emit(events.CONVERSATION_OPENED, conversation=conversation, channel=channel)
        _publish_opened(conversation)
    events.emit(events.MESSAGE_RECEIVED, conversation=conversation, message_id=str(message.id), seq=message.seq)
    realtime.publish([conversation.group_name, realtime.MONITOR_GROUP], realtime.message_new(message))
    if on_stored is not None:
        on_stored(conversation)
    if assistant_turn and conversation.status == ConversationStatus.BOT:
        # The turn is recorded with the message, so it survives a failed enqueue (see enqueue_turn).
        AssistantRun.objects.create(conversation=conversation, trigger_message=message)
        message_id = str(message.id)
        enqueue.after_commit(
            TURN_TASK, message_id, what="assistant turn", if_not_queued=partial(_turn_not_queued, message_id)
        )
    return Received(message, conversation, contact, opened=opened)


def _contact_for(
    channel: str, identity: str, *, locale: str | None, display_name: str, known: Contact | None = None
) -> Contact:
    """The contact known on `channel` as `identity` (created if new), with its locale and name updated.

    `known`: the door already read that contact (one identity lookup per message, not two).
    """
    if known is not None:
        return _update_contact(known, locale=locale, display_name=display_name)
    found = ContactIdentity.objects.select_related("contact").filter(channel=channel, value=identity).first()
    if found is None:
        try:
            with transaction.atomic():
                contact = Contact.objects.create(locale=locale or settings.LANGUAGE_CODE, display_name=display_name)
                ContactIdentity.objects.create(contact=contact, channel=channel, value=identity)
            return contact
        except IntegrityError:
            # A concurrent first message from the same person created it; ours rolled back.
            found = ContactIdentity.objects.select_related("contact").get(channel=channel, value=identity)
    return _update_contact(found.contact, locale=locale, display_name=display_name)


def _update_contact(contact: Contact, *, locale: str | None, display_name: str) -> Contact:
    changed = []
    if locale and contact.locale != locale:
        contact.locale = locale
        changed.append("locale")
    if display_name and not contact.display_name:
        contact.display_name = display_name
        changed.append("display_name")
    if changed:
        contact.save(update_fields=[*changed, "updated"])
    return contact


def _open_conversation(contact: Contact, channel: str, now: datetime | None = None) -> tuple[Conversation, bool]:
    """The contact's open conversation on `channel`, locked for this transaction, or a new one; and
    whether it is new.

    With `now` (a message is being stored) the next message number is taken too: `last_seq` is then the
    new message's, in the same statement that locks the row.
    """
    where = "contact_id = %s AND channel = %s AND status = ANY(%s)"
    params = [contact.pk, channel, list(OPEN_STATUSES)]
    for attempt in range(2):
        if now is not None:
            conversation = _take_next_seq(where, params, now)
        else:
            conversation = (
                Conversation.objects.select_for_update()
                .filter(contact=contact, channel=channel, status__in=OPEN_STATUSES)
                .first()
            )
        if conversation is not None:
            conversation.contact = contact
            return conversation, False
        if attempt:
            break
        numbered = {"last_seq": 1, "last_message_at": now} if now is not None else {}
        try:
            with transaction.atomic():
                conversation = Conversation.objects.create(contact=contact, channel=channel, **numbered)
            conversation.contact = contact
            return conversation, True
        except IntegrityError:
            continue  # the partial unique constraint lost us the race: use the one the other writer opened
    raise InboxError(f"No open conversation could be found or opened for contact {contact.pk} on {channel!r}.")


def _take_next_seq(where: str, params: list[Any], now: datetime, *, count: int = 1) -> Conversation | None:
    """Lock the conversation matching `where` and take its next `count` message numbers, in one statement.

    `last_seq` is then the last number taken.

    One UPDATE ... RETURNING instead of SELECT ... FOR UPDATE then UPDATE: the row lock is held until the
    transaction ends, so numbers are handed out in order and never twice.
    """
    fields = statements.fields_of(Conversation)
    table = Conversation._meta.db_table
    sql = (
        f"UPDATE {table} SET last_seq = last_seq + %s, last_message_at = %s, updated = %s "  # noqa: S608 (fixed names)
        f"WHERE {where} RETURNING {statements.select_list(table, fields)}"
    )
    # The row becomes a Conversation through statements.instance (the fields' own converters), not a raw
    # queryset: the same instance for a fraction of the Python.
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, now, now, *params])
        row = cursor.fetchone()
    return statements.instance(Conversation, fields, row) if row is not None else None


def _append(conversation: Conversation, now: datetime, **fields: Any) -> Message:
    """Store the message under the number `_take_next_seq` (or the conversation's creation) gave it."""
    return statements.create(
        Message(
            conversation=conversation, seq=conversation.last_seq, channel=conversation.channel, created=now, **fields
        )
    )


def typing(conversation_id: UUID | str, sender: str, active: bool) -> None:
    """Tell everyone watching the conversation that `sender` started or stopped typing; nothing is stored.

    Sockets call this rather than sending on the channel layer themselves: every push goes through
    realtime.publish (after commit, skipped while Redis is failing) from a service module.
    """
    realtime.publish([conversation_group(conversation_id)], realtime.typing(conversation_id, sender, active))


def send(
    conversation: Conversation,
    text: str,
    *,
    sender: Sender,
    agent: Any = None,
    content_type: str = "text",
    metadata: dict[str, Any] | None = None,
    message_id: UUID | None = None,
    statuses: Sequence[str] = OPEN_STATUSES,
) -> Message:
    """Store an outbound message (assistant, agent or system) and deliver it after commit.

    Raises ConversationClosedError when the conversation is not in one of `statuses` (by default: closed).

    A text longer than the channel's `max_length` is stored as one message per part (ChannelSpec.parts(),
    each with `metadata["part"] = [n, of]`), so each has its own provider id and status; they are
    delivered in order (conversations.delivery queues a part once the one before it is sent). Returns the
    first. `message_id` lets a caller that records the message's id elsewhere in the same transaction
    (the assistant's run) choose the first part's id.
    """
    if sender == Sender.CONTACT:
        raise InboxError("Messages from the contact come in through receive().")
    spec = channel_specs.get(conversation.channel)
    parts = spec.parts(text) if spec is not None else [text]
    deliverer = channel_specs.deliverer_for(conversation.channel)
    undeliverable = undeliverable_reason(conversation.channel)
    if undeliverable:
        logger.error("Message on %s stored as failed: %s", conversation.channel, undeliverable)
        status = DeliveryStatus.FAILED
    else:
        # Pulled channels (web chat) have no deliverer: the realtime push below is their delivery.
        status = DeliveryStatus.PENDING if deliverer else DeliveryStatus.SENT
    now = timezone.now()
    stored: list[Message] = []
    # No savepoint of its own inside a caller's transaction (the assistant's reply): nothing is written
    # before the one check that can refuse, which is raised outside the block, so the caller's
    # transaction stays usable after a refusal.
    with transaction.atomic(savepoint=False):
        where = "id = %s AND status = ANY(%s)"
        locked = _take_next_seq(where, [conversation.pk, [str(status) for status in statuses]], now, count=len(parts))
        if locked is not None:
            first_seq = locked.last_seq - len(parts) + 1
            for number, part in enumerate(parts, start=1):
                part_metadata = dict(metadata or {})
                if len(parts) > 1:
                    part_metadata["part"] = [number, len(parts)]
                # Built and inserted by a statement composed once (statements.create), not the ORM's create().
                message = Message(
                    id=(message_id if number == 1 and message_id else uuid4()),
                    conversation=locked,
                    seq=first_seq + number - 1,
                    channel=locked.channel,
                    created=now,
                    direction=Direction.OUTBOUND,
                    sender=sender,
                    agent=agent,
                    text=part,
                    content_type=content_type,
                    metadata=part_metadata,
                    delivery_status=status,
                    delivery_error=undeliverable,
                    # Later parts count as queued: the part before them queues them once it is sent.
                    delivery_queued_at=now if status == DeliveryStatus.PENDING else None,
                )
                statements.create(message)
                stored.append(message)
                events.emit(
                    events.MESSAGE_SENT, conversation=locked, message_id=str(message.id), seq=message.seq, sender=sender
                )
                realtime.publish(
                    [locked.group_name, realtime.MONITOR_GROUP], realtime.message_new(message, status=locked.status)
                )
                if status == DeliveryStatus.FAILED:
                    realtime.publish_message_status(message)
            if status == DeliveryStatus.PENDING:
                queued = str(stored[0].id)
                enqueue.after_commit(
                    DELIVERY_TASK, queued, what="delivery", if_not_queued=partial(_delivery_not_queued, queued)
                )
    if locked is None:
        raise ConversationClosedError("The conversation is closed.")
    conversation.last_seq = locked.last_seq
    conversation.last_message_at = locked.last_message_at
    return stored[0]


def undeliverable_reason(channel: str) -> str:
    """Why no deliverer can take outbound messages on `channel`; empty when one can (or none is needed)."""
    spec = channel_specs.get(channel)
    if spec is None:
        return f"The channel {channel!r} is not registered."
    if spec.delivery == "push" and spec.deliverer is None:
        return f"The channel {channel!r} delivers through a provider but has no deliverer."
    return ""


def enqueue_turn(message_id: str) -> bool:
    """Queue the turn of inbound `message_id` now; False when Redis failed or its breaker is open.

    Then the pending run is marked not queued (queued_at NULL) and the workers' recovery sweep queues it
    within seconds of Redis answering (tasks.recover_abandoned_work): the message is stored either way.
    """
    if enqueue.now(TURN_TASK, message_id, what="assistant turn"):
        return True
    _turn_not_queued(message_id)
    return False


def enqueue_delivery(message_id: str) -> bool:
    """Queue the delivery of outbound `message_id` now; False (marked not queued, as above) when it failed."""
    if enqueue.now(DELIVERY_TASK, message_id, what="delivery"):
        return True
    _delivery_not_queued(message_id)
    return False


def _turn_not_queued(message_id: str) -> None:
    _mark_not_queued(
        AssistantRun.objects.filter(trigger_message_id=UUID(message_id), status=AssistantRun.Status.PENDING),
        queued_at=None,
    )


def _delivery_not_queued(message_id: str) -> None:
    # Not while a worker holds it: its own claim time is what the dead-worker sweep counts from.
    _mark_not_queued(
        Message.objects.filter(pk=message_id, delivery_status=DeliveryStatus.PENDING, delivery_worker=""),
        delivery_queued_at=None,
    )


def _mark_not_queued(pending: Any, **not_queued: None) -> None:
    try:
        pending.update(**not_queued)
    except DatabaseError:
        # The database went too: the requeue sweep still finds the work by its old queue time.
        logger.warning("Could not mark %s as not queued", pending.model.__name__, exc_info=True)
