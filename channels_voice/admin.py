"""The voice channel in the admin: the call history (read-only, with each call's recording and, for
staff, a link to the view that plays it decrypted), the recordings, and the business's phone numbers with their
callers' language."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from channels_voice import recordings
from channels_voice.models import RecordingState, VoiceCall, VoiceNumber, VoiceRecording


def _play_link(recording: VoiceRecording | None) -> str:
    """The recording's state, with a play link when it is stored (the admin is staff-only, and so is the
    playback view the link opens)."""
    if recording is None:
        return "—"
    label = recording.get_state_display()
    if recording.state != RecordingState.STORED:
        return str(label)
    url = reverse("voice:play-recording", args=[recording.recording_sid])
    return format_html('{} · <a href="{}" target="_blank" rel="noopener">{}</a>', label, url, _("Play"))


class _ReadOnly(admin.ModelAdmin):
    """Written by Twilio's webhooks and the recording task only."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields] + list(self.extra_readonly)

    extra_readonly: tuple[str, ...] = ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(VoiceCall)
class VoiceCallAdmin(_ReadOnly):
    """The call history, read-only."""

    list_display = (
        "call_sid", "from_number", "to_number", "status", "mode", "locale", "started_at", "duration_s", "recording"
    )  # fmt: skip
    list_filter = ("status", "mode", "locale", "direction")
    search_fields = ("call_sid", "from_number", "to_number")
    date_hierarchy = "started_at"
    list_select_related = ("conversation",)
    raw_id_fields = ("conversation",)
    extra_readonly = ("recording",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("recordings")

    @admin.display(description=_("recording"))
    def recording(self, obj: VoiceCall) -> str:
        return _play_link(obj.recording)


@admin.register(VoiceRecording)
class VoiceRecordingAdmin(_ReadOnly):
    """The recordings, read-only; a deletion (with the delete permission) removes the encrypted file too."""

    actions = ["download_again"]
    list_display = ("recording_sid", "call", "state", "duration_s", "created", "remote_deleted_at", "play")
    list_filter = ("state",)
    search_fields = ("recording_sid", "call__call_sid", "call__from_number")
    list_select_related = ("call",)
    raw_id_fields = ("call",)
    extra_readonly = ("play",)

    @admin.display(description=_("play"))
    def play(self, obj: VoiceRecording) -> str:
        return _play_link(obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    @admin.action(description=_("Download the failed recordings again"))
    def download_again(self, request: HttpRequest, queryset: Any) -> None:
        queued = recordings.retry(queryset)
        self.message_user(request, _("%(count)d recording(s) queued for download.") % {"count": queued})


@admin.register(VoiceNumber)
class VoiceNumberAdmin(admin.ModelAdmin):
    """The business's numbers; a call to one is greeted in its language (else the caller's country's)."""

    list_display = ("number", "locale", "label")
    list_filter = ("locale",)
    search_fields = ("number", "label")
