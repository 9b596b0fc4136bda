"""The channel-agnostic conversation core: who talked, where, what was said and who answered.

Conversation.status is changed only by conversations.state; messages are written only by
conversations.inbox. Models here hold data and invariants, not workflows.
"""

from __future__ import annotations

import uuid
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


def validate_e164(value: str) -> None:
    """A phone number in E.164 form (+ and digits) that libphonenumber considers valid."""
    message = _("Enter a phone number in international format, like +34600123456.")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValidationError(message, code="e164") from None
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(parsed) or formatted != value:
        raise ValidationError(message, code="e164")


class Channel:
    """The web chat's channel name, for core code and tests that mean it (the seed data, the demo).

    Not a list of channels: those are what conversations.registry.channel_specs holds (each channel app
    registers its spec in ready()), and `channel` fields accept any registered name.
    """

    WEB = "web"


def channel_label(name: str) -> str:
    from conversations.registry import channel_specs

    return str(channel_specs.label(name))


def channel_icon(name: str) -> str:
    from conversations.registry import channel_specs

    spec = channel_specs.get(name)
    return spec.icon if spec else ""


class Locale(models.TextChoices):
    SPANISH = "es", _("Spanish")
    ENGLISH = "en", _("English")


class TimeStamped(models.Model):
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False, db_index=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True


class Contact(TimeStamped):
    """A person TalIA talks to, on any number of channels."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, validators=[validate_e164])
    company = models.CharField(_("company"), max_length=200, blank=True)
    locale = models.CharField(_("locale"), max_length=8, choices=Locale.choices, default=Locale.SPANISH)
    consent_given_at = models.DateTimeField(_("consent given at"), null=True, blank=True)
    # Declined (in the widget's notice or in the dialogue) and not given since: nothing personal is
    # stored and nobody asks again.
    consent_declined_at = models.DateTimeField(_("consent declined at"), null=True, blank=True)
    consent_text_version = models.CharField(_("consent text version"), max_length=40, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    # Set by conversations.retention once the personal fields are cleared; never set back.
    anonymised_at = models.DateTimeField(_("anonymised at"), null=True, blank=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.full_name or self.display_name or self.email or self.phone or self.anonymous_name

    @property
    def anonymous_name(self) -> str:
        """A visitor who has said nothing about themselves: where they write from (when the web channel's
        geolocation found it) and a short, stable reference the team can say aloud ("Visitante 3f2a9c")."""
        ref = str(self.id)[:6]
        place = self.metadata.get("geolocation") if isinstance(self.metadata, dict) else None
        city = str(place.get("city") or "").strip()[:60] if isinstance(place, dict) else ""
        if city:
            return gettext("Visitor from %(city)s · %(ref)s") % {"city": city, "ref": ref}
        return gettext("Visitor %(ref)s") % {"ref": ref}

    @property
    def has_consented(self) -> bool:
        return self.consent_given_at is not None

    @property
    def consent_state(self) -> str | None:
        """'granted', 'declined' or None (not asked yet, or no answer): one state for every door."""
        if self.consent_given_at is not None:
            return "granted"
        return "declined" if self.consent_declined_at is not None else None


class ContactIdentity(TimeStamped):
    """How a contact is recognised on one channel: web session id, WhatsApp number, caller number."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    channel = models.CharField(_("channel"), max_length=16)
    value = models.CharField(_("identity"), max_length=200)

    class Meta:
        verbose_name = _("contact identity")
        verbose_name_plural = _("contact identities")
        constraints = [
            models.UniqueConstraint(fields=["channel", "value"], name="unique_identity_per_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.value}"


class ConversationStatus(models.TextChoices):
    BOT = "bot", _("With the assistant")
    QUEUED = "queued", _("Waiting for an agent")
    AGENT = "agent", _("With an agent")
    CLOSED = "closed", _("Closed")


OPEN_STATUSES = (ConversationStatus.BOT, ConversationStatus.QUEUED, ConversationStatus.AGENT)


def conversation_group(conversation_id: object) -> str:
    """The channel-layer group of everyone watching a conversation: its contact's sockets and the staff's."""
    return f"conversation.{conversation_id}"


class Conversation(TimeStamped):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(_("channel"), max_length=16)
    # Changed only through conversations.state.
    status = models.CharField(
        _("status"), max_length=16, choices=ConversationStatus.choices, default=ConversationStatus.BOT
    )
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        verbose_name=_("assigned agent"),
    )
    provider_conversation_id = models.CharField(_("provider conversation id"), max_length=200, blank=True)
    last_response_id = models.CharField(_("last response id"), max_length=200, blank=True)
    # Highest Message.seq handed out; incremented under the row lock by conversations.inbox.
    last_seq = models.PositiveIntegerField(_("last message number"), default=0)
    last_message_at = models.DateTimeField(_("last message at"), null=True, blank=True)
    # Changed through conversations.labels (an event and a push with each change).
    labels: models.ManyToManyField[Label, Any] = models.ManyToManyField(
        "Label", blank=True, related_name="conversations", verbose_name=_("labels")
    )
    # The team whose queue it waits in (conversations.teams routes it when it is queued); None: everyone's.
    team = models.ForeignKey(
        "Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("team"),
    )
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # Set by conversations.retention once the texts and files are cleared (TALIA_RETENTION_DAYS).
    anonymised_at = models.DateTimeField(_("anonymised at"), null=True, blank=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "channel"],
                condition=~Q(status=ConversationStatus.CLOSED),
                name="one_open_conversation_per_contact_channel",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "channel"], name="conversation_status_channel"),
            # The nightly retention pass: closed conversations not anonymised yet, oldest first.
            models.Index(
                fields=["closed_at"],
                condition=Q(status=ConversationStatus.CLOSED, anonymised_at__isnull=True),
                name="conversation_retention_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_label} · {self.contact} · {self.get_status_display()}"

    @property
    def channel_label(self) -> str:
        return channel_label(self.channel)

    @property
    def channel_icon(self) -> str:
        return channel_icon(self.channel)

    @property
    def is_open(self) -> bool:
        return self.status != ConversationStatus.CLOSED

    @property
    def group_name(self) -> str:
        """The channel-layer group of everyone watching this conversation."""
        return conversation_group(self.id)


class Direction(models.TextChoices):
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")


class Sender(models.TextChoices):
    CONTACT = "contact", _("Contact")
    ASSISTANT = "assistant", _("Assistant")
    AGENT = "agent", _("Agent")
    SYSTEM = "system", _("System")


class DeliveryStatus(models.TextChoices):
    """Inbound messages are RECEIVED. Outbound ones are PENDING until handed to a deliverer, then follow
    the provider's callbacks forward only (conversations.delivery.record_status):
    QUEUED -> SENT -> DELIVERED -> READ, with FAILED and UNDELIVERED terminal."""

    RECEIVED = "received", _("Received")
    PENDING = "pending", _("Pending")
    QUEUED = "queued", _("Queued by the provider")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    FAILED = "failed", _("Failed")
    UNDELIVERED = "undelivered", _("Undelivered")


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField(_("number"))
    # Copied from the conversation so a provider's message id can be unique per channel.
    channel = models.CharField(_("channel"), max_length=16)
    direction = models.CharField(_("direction"), max_length=8, choices=Direction.choices)
    sender = models.CharField(_("sender"), max_length=16, choices=Sender.choices)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("agent"),
    )
    text = models.TextField(_("text"), blank=True)
    content_type = models.CharField(_("content type"), max_length=40, default="text")
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    external_id = models.CharField(_("external id"), max_length=200, blank=True)
    delivery_status = models.CharField(_("delivery status"), max_length=16, choices=DeliveryStatus.choices, blank=True)
    delivery_attempts = models.PositiveSmallIntegerField(_("delivery attempts"), default=0)
    delivery_error = models.TextField(_("delivery error"), blank=True)
    # Last time delivery was put on the queue (outbound messages with a channel deliverer only). NULL on
    # a pending delivery means its enqueue failed or was skipped: the recovery sweep queues it.
    delivery_queued_at = models.DateTimeField(_("delivery queued at"), null=True, blank=True)
    # The worker process (talia.workers.identity) sending it right now; empty between attempts.
    delivery_worker = models.CharField(_("delivery worker"), max_length=200, blank=True)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="unique_message_seq"),
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~Q(external_id=""),
                name="unique_external_id_per_channel",
            ),
        ]
        indexes = [
            models.Index(
                fields=["delivery_queued_at"],
                condition=Q(delivery_status=DeliveryStatus.PENDING),
                name="message_pending_delivery",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.sender}: {self.text[:60]}"


class HandoffRequest(TimeStamped):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        CANCELLED = "cancelled", _("Cancelled")
        CLOSED = "closed", _("Closed without an agent")
        EXPIRED = "expired", _("Nobody claimed it in time")

    class RequestedBy(models.TextChoices):
        CONTACT = "contact", _("Contact")
        ASSISTANT = "assistant", _("Assistant")
        ADMIN = "admin", _("Admin")
        AGENT = "agent", _("Agent (transfer)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="handoff_requests")
    requested_by = models.CharField(_("requested by"), max_length=16, choices=RequestedBy.choices)
    reason = models.TextField(_("reason"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    # Asked for outside the assistant profile's business hours: it waits for the team to be back.
    out_of_hours = models.BooleanField(_("out of hours"), default=False)
    # The conversation so far, written for the agent by the model engine after the request is stored
    # (empty until then, and with the offline engine, whose brief is extractive and built on demand).
    brief_summary = models.TextField(_("brief summary"), blank=True)
    brief_topics = models.JSONField(_("brief topics"), default=list, blank=True)

    class Meta:
        verbose_name = _("handoff request")
        verbose_name_plural = _("handoff requests")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.get_requested_by_display()}: {self.reason[:60]}"


class AgentAssignment(models.Model):
    class ReleaseReason(models.TextChoices):
        CLOSED = "closed", _("Conversation closed")
        HANDED_BACK = "handed_back", _("Handed back to the assistant")
        TRANSFERRED = "transferred", _("Transferred")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="assignments")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    assigned_at = models.DateTimeField(_("assigned at"), default=timezone.now)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    release_reason = models.CharField(_("release reason"), max_length=16, choices=ReleaseReason.choices, blank=True)

    class Meta:
        verbose_name = _("agent assignment")
        verbose_name_plural = _("agent assignments")
        ordering = ["-assigned_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(released_at__isnull=True),
                name="one_active_assignment_per_conversation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent} · {self.conversation_id}"


class AssignmentOffer(models.Model):
    """A queued conversation offered to one agent by auto-assignment (conversations.assignment).

    At most one offer per conversation is pending at a time; it counts toward the agent's load until it
    is accepted, declined, expired (nobody answered by `expires_at`) or withdrawn (someone claimed the
    conversation, or it left the queue).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        EXPIRED = "expired", _("Expired")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="offers")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignment_offers")
    team = models.ForeignKey("Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    created = models.DateTimeField(_("offered at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("assignment offer")
        verbose_name_plural = _("assignment offers")
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(status="pending"),
                name="one_pending_offer_per_conversation",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="offer_status_expiry")]

    def __str__(self) -> str:
        return f"{self.agent} · {self.conversation_id} ({self.status})"


class EndChatRequest(TimeStamped):
    class RequestedBy(models.TextChoices):
        CONTACT = "contact", _("Contact")
        AGENT = "agent", _("Agent")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="end_requests")
    requested_by = models.CharField(_("requested by"), max_length=16, choices=RequestedBy.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("end-chat request")
        verbose_name_plural = _("end-chat requests")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.get_requested_by_display()} · {self.get_status_display()}"


class InternalNote(TimeStamped):
    """Staff-only text on a conversation: an agent's note, or a supervisor's whisper to its agent.

    Notes live apart from messages so that no path that shows a contact their conversation can ever
    include one.
    """

    class Kind(models.TextChoices):
        NOTE = "note", _("Note")
        WHISPER = "whisper", _("Whisper")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.NOTE)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("author"),
    )
    # The agent a whisper was meant for.
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recipient"),
    )
    text = models.TextField(_("text"))

    class Meta:
        verbose_name = _("internal note")
        verbose_name_plural = _("internal notes")
        ordering = ["created"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text[:60]}"


class ConversationSummary(TimeStamped):
    class EndedBy(models.TextChoices):
        CONTACT = "contact", _("Contact")
        AGENT = "agent", _("Agent")
        ASSISTANT = "assistant", _("Assistant")
        SYSTEM = "system", _("System")

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="summary")
    summary = models.TextField(_("summary"))
    topics = models.JSONField(_("topics"), default=list, blank=True)
    message_count = models.PositiveIntegerField(_("messages"))
    started_at = models.DateTimeField(_("started"))
    ended_at = models.DateTimeField(_("ended"))
    ended_by = models.CharField(_("ended by"), max_length=16, choices=EndedBy.choices)
    # The engine that wrote the summary; "extractive" when no model was asked (or the model failed).
    engine = models.CharField(_("written by"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("conversation summary")
        verbose_name_plural = _("conversation summaries")

    def __str__(self) -> str:
        return self.summary[:80]


class ConversationRating(TimeStamped):
    """The contact's answer to "how did we do?" once a conversation ends (CSAT): one per conversation.

    Written only by conversations.csat.rate_conversation(); a second answer replaces the first (the
    contact changed their mind), and `created`/`updated` tell when each was given.
    """

    MIN_SCORE = 1
    MAX_SCORE = 5
    MAX_COMMENT = 1000

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="rating")
    score = models.PositiveSmallIntegerField(
        _("score"), validators=[MinValueValidator(MIN_SCORE), MaxValueValidator(MAX_SCORE)]
    )
    comment = models.TextField(_("comment"), max_length=MAX_COMMENT, blank=True)

    class Meta:
        verbose_name = _("conversation rating")
        verbose_name_plural = _("conversation ratings")
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="rating_score_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.score}/5"


class AssistantRun(TimeStamped):
    """One assistant turn, keyed by the message that triggered it so a redelivered task never answers twice.

    Created as `pending` in the same transaction as its message (so a turn can never be lost between the
    database and the queue), then claimed by exactly one worker.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="assistant_runs")
    trigger_message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="assistant_run")
    reply_message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    engine = models.CharField(_("engine"), max_length=32, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    prompt_version = models.CharField(_("prompt version"), max_length=40, blank=True)
    response_id = models.CharField(_("response id"), max_length=200, blank=True)
    previous_response_id = models.CharField(_("previous response id"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    # Last time the turn task was put on the queue; the requeue sweep uses it to avoid piling up copies.
    # NULL while pending means the enqueue failed or was skipped (Redis down): the workers' recovery
    # sweep (tasks.recover_abandoned_work) queues it within seconds of Redis answering again.
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True, default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    # The worker process (talia.workers.identity) running the turn; a dead one's runs are released at once.
    worker = models.CharField(_("worker"), max_length=200, blank=True)
    rounds = models.PositiveSmallIntegerField(_("rounds"), default=0)
    input_tokens = models.PositiveIntegerField(_("input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(_("output tokens"), default=0)
    total_tokens = models.PositiveIntegerField(_("total tokens"), default=0)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    # Not stored: set by turns.claim_run when this claim is the run's first (no earlier execution can
    # have stored tool calls for it).
    first_claim = False

    class Meta:
        verbose_name = _("assistant run")
        verbose_name_plural = _("assistant runs")
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "queued_at"], name="assistant_run_status_queued")]

    def __str__(self) -> str:
        return f"{self.engine} · {self.get_status_display()}"


class ToolCall(TimeStamped):
    class Status(models.TextChoices):
        OK = "ok", _("OK")
        ERROR = "error", _("Error")

    run = models.ForeignKey(AssistantRun, on_delete=models.CASCADE, related_name="tool_calls")
    call_id = models.CharField(_("call id"), max_length=200)
    name = models.CharField(_("name"), max_length=100)
    arguments = models.JSONField(_("arguments"), default=dict, blank=True)
    output = models.JSONField(_("output"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices)

    class Meta:
        verbose_name = _("tool call")
        verbose_name_plural = _("tool calls")
        ordering = ["created"]
        constraints = [models.UniqueConstraint(fields=["run", "call_id"], name="unique_call_id_per_run")]

    def __str__(self) -> str:
        return f"{self.name}({self.call_id})"


class Event(models.Model):
    """Something that happened, written in the same transaction as the change it records.

    `name` is open: the apps that record events declare them (conversations/events.py), and
    `events.emit()` is the only writer, so every stored name and payload matches a declaration.
    """

    name = models.CharField(_("name"), max_length=64, db_index=True)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="events")
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False, db_index=True)
    # Set by the integrations publisher (talia/integrations/publisher.py) once the event's deliveries to
    # the sinks are recorded; NULL = not yet handed over (the outbox), found through a partial index.
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["id"], name="event_unpublished", condition=models.Q(published_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return self.name


COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("A colour as #rrggbb, like #0f766e."))


class Label(TimeStamped):
    """A tag the team puts on conversations (admin-managed): "VIP", "Complaint", "Billing"…"""

    name = models.CharField(_("name"), max_length=40, unique=True)
    colour = models.CharField(_("colour"), max_length=7, default="#64748b", validators=[COLOUR])
    description = models.CharField(_("description"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("label")
        verbose_name_plural = _("labels")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _words(text: str) -> list[str]:
    """Comma- or line-separated entries, trimmed, empty ones dropped."""
    return [word.strip() for word in text.replace("\n", ",").split(",") if word.strip()]


class Team(TimeStamped):
    """A group of agents with its own queue (Sales, Support…), admin-managed.

    A conversation is routed to a team when it is queued (conversations.teams): by a keyword of the
    handoff reason, else by its channel; otherwise it waits in everyone's queue.
    """

    name = models.CharField(_("name"), max_length=60, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="teams", verbose_name=_("members")
    )
    channels = models.CharField(
        _("channels"),
        max_length=200,
        blank=True,
        help_text=_("Comma-separated channel names (web, whatsapp, voice…) whose conversations this team takes."),
    )
    keywords = models.TextField(
        _("handoff reason keywords"),
        blank=True,
        help_text=_("Comma-separated words; a handoff whose reason contains one is routed to this team."),
    )
    auto_assign = models.BooleanField(
        _("auto-assign"),
        default=True,
        help_text=_("Give each queued conversation to the available member with the fewest open ones."),
    )
    capacity = models.PositiveSmallIntegerField(
        _("capacity per agent"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Auto-assignment gives a member no more open conversations than this."),
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def channel_list(self) -> list[str]:
        return [word.lower() for word in _words(self.channels)]

    @property
    def keyword_list(self) -> list[str]:
        return _words(self.keywords)

    def clean(self) -> None:
        from conversations.registry import channel_specs

        known = {spec.name for spec in channel_specs.all()}
        unknown = [name for name in self.channel_list if name not in known]
        if unknown:
            raise ValidationError({"channels": gettext("Unknown channels: %(names)s.") % {"names": ", ".join(unknown)}})


class QuickReply(TimeStamped):
    shortcut = models.SlugField(_("shortcut"), max_length=40)
    text = models.TextField(_("text"))
    locale = models.CharField(_("locale"), max_length=8, choices=Locale.choices, default=Locale.SPANISH)

    class Meta:
        verbose_name = _("quick reply")
        verbose_name_plural = _("quick replies")
        ordering = ["shortcut"]
        constraints = [models.UniqueConstraint(fields=["shortcut", "locale"], name="unique_quick_reply")]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Tone(models.TextChoices):
    WARM = "warm", _("Warm and close")
    FORMAL = "formal", _("Formal")
    CONCISE = "concise", _("Brief and to the point")


class AssistantProfile(TimeStamped):
    """The business's own assistant, edited in the admin: its name, words, instructions and opening hours.

    There is one profile (the business this TalIA serves); every field left blank falls back to the
    defaults (`TALIA_BUSINESS_NAME`, the built-in greeting and prompts), so an empty profile changes
    nothing. Read it through `conversations.profile.current()`, which caches it.
    """

    business_name = models.CharField(
        _("business name"), max_length=120, blank=True, help_text=_("Blank: TALIA_BUSINESS_NAME.")
    )
    assistant_name = models.CharField(
        _("assistant's name"),
        max_length=60,
        blank=True,
        help_text=_("How the assistant introduces itself, e.g. Sofía."),
    )
    greeting_es = models.TextField(
        _("greeting (Spanish)"), blank=True, help_text=_("The first words to a visitor. Blank: the built-in greeting.")
    )
    greeting_en = models.TextField(_("greeting (English)"), blank=True)
    instructions_es = models.TextField(
        _("instructions (Spanish)"),
        blank=True,
        help_text=_("Added to the model's instructions: tone, what to offer, what never to say."),
    )
    instructions_en = models.TextField(_("instructions (English)"), blank=True)
    tone = models.CharField(
        _("tone"),
        max_length=16,
        choices=Tone.choices,
        default=Tone.WARM,
        help_text=_("How the model engines word their answers."),
    )
    lead_fields = models.JSONField(
        _("details to ask for"),
        default=list,
        blank=True,
        help_text=_('In order, from "full_name", "email", "phone", "company". Empty: all of them, in that order.'),
    )
    consent_text_es = models.TextField(
        _("consent notice (Spanish)"),
        blank=True,
        help_text=_("What the chat's consent notice says. Blank: the built-in notice."),
    )
    consent_text_en = models.TextField(_("consent notice (English)"), blank=True)
    consent_version = models.CharField(
        _("consent notice version"),
        max_length=40,
        blank=True,
        help_text=_(
            "Stored with each contact's answer; change it when the notice changes and visitors are asked again. "
            "Blank: TALIA_CONSENT_VERSION."
        ),
    )
    offer_whatsapp = models.BooleanField(
        _("offer WhatsApp"), default=True, help_text=_("Offer to continue on WhatsApp when a number is configured.")
    )
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, help_text=_("Blank: TALIA_TIME_ZONE."))
    business_hours = models.JSONField(
        _("business hours"),
        default=dict,
        blank=True,
        help_text=_(
            'Per weekday, opening and closing times: {"mon": [["09:00", "14:00"], ["16:00", "19:00"]], …}. '
            "Empty: always open."
        ),
    )
    holidays = models.JSONField(
        _("holidays"), default=list, blank=True, help_text=_('Closed days: ["2026-12-25", "2027-01-01"].')
    )
    out_of_hours_es = models.TextField(
        _("out-of-hours message (Spanish)"),
        blank=True,
        help_text=_("Said when a visitor asks for a person while the team is away. Blank: the built-in one."),
    )
    out_of_hours_en = models.TextField(_("out-of-hours message (English)"), blank=True)
    reply_minutes = models.PositiveSmallIntegerField(
        _("usual reply time (minutes)"),
        null=True,
        blank=True,
        help_text=_('Shown in the chat during business hours: "usually replies in N minutes". Blank: not shown.'),
    )
    offer_choice = models.BooleanField(
        _("ask assistant or person"),
        default=False,
        help_text=_("The chat first asks whether to talk to the assistant or a person (a site may also ask for it)."),
    )
    prechat_fields = models.JSONField(
        _("pre-chat form"),
        default=list,
        blank=True,
        help_text=_('Details asked before the chat, in order, from "full_name", "email", "phone". Empty: no form.'),
    )
    prechat_required = models.JSONField(
        _("pre-chat required details"),
        default=list,
        blank=True,
        help_text=_("Which of the pre-chat form's details must be given."),
    )

    class Meta:
        verbose_name = _("assistant profile")
        verbose_name_plural = _("assistant profile")

    def __str__(self) -> str:
        return str(self.assistant_name or self.business_name or _("Assistant profile"))

    def clean(self) -> None:
        from conversations.leadfields import LEAD_FIELDS
        from conversations.profile import hours_problems, prechat_problems

        problems: dict[str, str] = {}
        if not isinstance(self.lead_fields, list) or any(field not in LEAD_FIELDS for field in self.lead_fields):
            problems["lead_fields"] = gettext("A list of: %(fields)s.") % {"fields": ", ".join(LEAD_FIELDS)}
        elif len(set(self.lead_fields)) != len(self.lead_fields):
            problems["lead_fields"] = gettext("Each detail at most once.")
        problems.update(prechat_problems(self.prechat_fields, self.prechat_required))
        problems.update(hours_problems(self.time_zone, self.business_hours, self.holidays))
        if problems:
            raise ValidationError(problems)
