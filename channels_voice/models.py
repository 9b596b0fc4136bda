"""A phone call TalIA answered: one VoiceCall per Twilio CallSid, attached to the voice conversation
whose Messages are its transcript.

`status` only moves forward: Twilio's status callbacks may arrive out of order or twice, so each carries
a SequenceNumber and only a newer one is applied (services.apply_status), and a finished call stays
finished.

A VoiceRecording is one Twilio recording of a call (unique RecordingSid): its audio is kept only
encrypted at rest (channels_voice.recordings), never in clear on disk. A VoiceNumber is one of the
business's own phone numbers, with the language its callers are greeted in.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations.models import validate_e164


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

    @property
    def recording(self) -> VoiceRecording | None:
        """The call's latest recording, or None (recording off, or Twilio has not reported one yet).
        Reads `recordings.all()`, so a prefetch_related("recordings") serves it."""
        return max(self.recordings.all(), key=lambda recording: recording.created, default=None)


class RecordingState(models.TextChoices):
    RECORDING = "recording", _("Recording")  # Twilio is recording (or processing) it
    PENDING = "pending", _("Pending download")  # completed at Twilio, to be downloaded and encrypted
    STORED = "stored", _("Stored encrypted")
    FAILED = "failed", _("Failed")  # the download failed for good, or Twilio's recording failed
    ABSENT = "absent", _("No audio")  # Twilio recorded nothing (silence)


class VoiceRecording(models.Model):
    """A Twilio recording of a call. `stored_name` is the encrypted file under TALIA_RECORDINGS_DIR, set
    only once it is there (state STORED); `remote_deleted_at` once Twilio's copy is deleted."""

    recording_sid = models.CharField(_("recording SID"), max_length=64, unique=True)
    call = models.ForeignKey(VoiceCall, on_delete=models.CASCADE, related_name="recordings", verbose_name=_("call"))
    state = models.CharField(
        _("state"), max_length=16, choices=RecordingState.choices, default=RecordingState.RECORDING
    )
    # RecordingStatus as Twilio last reported it (in-progress, completed, absent, failed...).
    twilio_status = models.CharField(_("Twilio status"), max_length=16, blank=True)
    duration_s = models.PositiveIntegerField(_("duration (s)"), null=True, blank=True)
    stored_name = models.CharField(_("stored file"), max_length=200, blank=True)
    content_type = models.CharField(_("content type"), max_length=64, blank=True)
    size = models.PositiveBigIntegerField(_("size (bytes, in clear)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    stored_at = models.DateTimeField(_("stored at"), null=True, blank=True)
    remote_deleted_at = models.DateTimeField(_("deleted from Twilio at"), null=True, blank=True)

    class Meta:
        verbose_name = _("call recording")
        verbose_name_plural = _("call recordings")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.recording_sid} ({self.state})"


class VoiceNumber(models.Model):
    """One of the business's phone numbers that callers dial (Twilio's `To`), with their language."""

    number = models.CharField(
        _("number"), max_length=20, unique=True, validators=[validate_e164], help_text=_("E.164, like +34910111222.")
    )
    locale = models.CharField(
        _("language"),
        max_length=8,
        choices=[("es", _("Spanish")), ("en", _("English"))],
        help_text=_("The language callers of this number are greeted and heard in."),
    )
    label = models.CharField(_("label"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("phone number")
        verbose_name_plural = _("phone numbers")
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} ({self.label})" if self.label else self.number
