"""Leads: a card per contact moving through a pipeline, what each conversation was about, and meetings.

Stages are configurable (TALIA_LEAD_STAGES); every change of stage is a LeadMovement saying who or what
moved the card and why. ScheduledEvents are meetings spotted in conversations, by the live assistant
(`schedule_meeting`) or by the periodic analysis, never twice for the same conversation and start.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models import Contact, Conversation, Message, channel_label


def default_stage() -> str:
    return str(settings.TALIA_LEAD_STAGES[0])


class LeadCard(models.Model):
    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="lead_card")
    source_conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(_("channel"), max_length=16, blank=True)
    stage = models.CharField(_("stage"), max_length=32, default=default_stage, db_index=True)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=2, null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="lead_cards"
    )
    summary = models.TextField(_("summary"), blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False, db_index=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("lead card")
        verbose_name_plural = _("lead cards")
        ordering = ["-updated"]

    def __str__(self) -> str:
        return f"{self.contact} · {self.stage}"

    @property
    def channel_label(self) -> str:
        return channel_label(self.channel) if self.channel else ""


class LeadMovement(models.Model):
    class MovedBy(models.TextChoices):
        ASSISTANT = "assistant", _("Assistant")
        AGENT = "agent", _("Agent")
        ANALYSIS = "analysis", _("Conversation analysis")
        SYSTEM = "system", _("System")

    card = models.ForeignKey(LeadCard, on_delete=models.CASCADE, related_name="movements")
    from_stage = models.CharField(_("from"), max_length=32, blank=True)
    to_stage = models.CharField(_("to"), max_length=32)
    moved_by = models.CharField(_("moved by"), max_length=16, choices=MovedBy.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(_("reason"), blank=True)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False, db_index=True)

    class Meta:
        verbose_name = _("lead movement")
        verbose_name_plural = _("lead movements")
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.from_stage or '·'} → {self.to_stage}"


class ConversationInsight(models.Model):
    class Sentiment(models.TextChoices):
        POSITIVE = "positive", _("Positive")
        NEUTRAL = "neutral", _("Neutral")
        NEGATIVE = "negative", _("Negative")

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="insight")
    intent = models.CharField(_("intent"), max_length=200, blank=True)
    topics = models.JSONField(_("topics"), default=list, blank=True)
    sentiment = models.CharField(_("sentiment"), max_length=16, choices=Sentiment.choices, blank=True)
    next_step = models.TextField(_("next step"), blank=True)
    engine = models.CharField(_("engine"), max_length=32, blank=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("conversation insight")
        verbose_name_plural = _("conversation insights")

    def __str__(self) -> str:
        return self.intent or str(self.conversation_id)


class ScheduledEvent(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(_("title"), max_length=200)
    start = models.DateTimeField(_("start"), db_index=True)
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), default=30)
    attendees = models.JSONField(_("attendees"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="meetings")
    conversation = models.ForeignKey(Conversation, on_delete=models.SET_NULL, null=True, related_name="meetings")
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PROPOSED)
    created_by = models.CharField(_("created by"), max_length=16, choices=LeadMovement.MovedBy.choices)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("scheduled event")
        verbose_name_plural = _("scheduled events")
        ordering = ["start"]
        constraints = [
            # One meeting per conversation and start: the analysis never duplicates the live turn's.
            models.UniqueConstraint(fields=["conversation", "start"], name="one_event_per_conversation_start"),
        ]

    def __str__(self) -> str:
        return f"{self.title} · {self.start:%Y-%m-%d %H:%M}"


class ConversationAnalysis(models.Model):
    """How far the periodic analysis has read a conversation: every message up to `analysed_seq`."""

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="analysis")
    analysed_seq = models.PositiveIntegerField(_("analysed up to message"), default=0)
    analysed_at = models.DateTimeField(_("analysed at"), default=timezone.now)
    findings = models.JSONField(_("findings"), default=dict, blank=True)

    class Meta:
        verbose_name = _("conversation analysis")
        verbose_name_plural = _("conversation analyses")

    def __str__(self) -> str:
        return f"{self.conversation_id} ≤ #{self.analysed_seq}"


def new_feed_token() -> str:
    return secrets.token_urlsafe(32)


class CalendarFeed(models.Model):
    """A private iCalendar feed URL per user, so Google Calendar or Outlook can subscribe to the meetings."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed")
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_feed_token)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")

    def __str__(self) -> str:
        return f"{self.user} feed"
