"""A phone call TalIA answered: one VoiceCall per Twilio CallSid, attached to the voice conversation
whose Messages are its transcript.

`status` only moves forward: Twilio's status callbacks may arrive out of order or twice, so each carries
a SequenceNumber and only a newer one is applied (services.apply_status), and a finished call stays
finished.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CallStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    INITIATED = "initiated", _("Initiated")
    RINGING = "ringing", _("Ringing")
    IN_PROGRESS = "in-progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    BUSY = "busy", _("Busy")
    FAILED = "failed", _("Failed")
    NO_ANSWER = "no-answer", _("No answer")
    CANCELED = "canceled", _("Canceled")


FINAL_STATUSES = frozenset(
    {CallStatus.COMPLETED, CallStatus.BUSY, CallStatus.FAILED, CallStatus.NO_ANSWER, CallStatus.CANCELED}
)


class CallMode(models.TextChoices):
    GATHER = "gather", _("Speech turns (Gather)")
    REALTIME = "realtime", _("Realtime bridge")


class VoiceCall(models.Model):
    call_sid = models.CharField(_("call SID"), max_length=64, unique=True)
    from_number = models.CharField(_("from"), max_length=64)
    to_number = models.CharField(_("to"), max_length=64, blank=True)
    direction = models.CharField(_("direction"), max_length=32, default="inbound")
    status = models.CharField(_("status"), max_length=16, choices=CallStatus.choices, default=CallStatus.RINGING)
    # The SequenceNumber of the last status callback applied; None before the first.
    last_sequence_number = models.IntegerField(_("last sequence number"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    duration_s = models.PositiveIntegerField(_("duration (s)"), null=True, blank=True)
    mode = models.CharField(_("mode"), max_length=16, choices=CallMode.choices, default=CallMode.GATHER)
    locale = models.CharField(_("locale"), max_length=8, default="es")
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="voice_calls",
        verbose_name=_("conversation"),
    )

    class Meta:
        verbose_name = _("voice call")
        verbose_name_plural = _("voice calls")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="voicecall_started_idx")]

    def __str__(self) -> str:
        return f"{self.from_number} → {self.to_number} ({self.call_sid})"

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES
