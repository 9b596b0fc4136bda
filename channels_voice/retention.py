"""Retention for calls (conversations.retention): an old call keeps its times, status and duration (the
voice KPIs) and loses the caller's number and its recordings, encrypted files included."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from channels_voice import recordings
from channels_voice.events import CALL_STARTED
from channels_voice.models import RecordingState, VoiceCall, VoiceRecording
from conversations.retention import RetentionPart, parts, personal_event_keys

DELETED = "Deleted by the retention policy (TALIA_RETENTION_DAYS)."


def scrub_conversations(ids: list[UUID]) -> Iterable[tuple[str, int]]:
    calls = VoiceCall.objects.filter(conversation_id__in=ids)
    yield "caller_numbers", calls.exclude(from_number="").update(from_number="")
    held = VoiceRecording.objects.filter(call__in=calls).exclude(state=RecordingState.ABSENT, stored_name="")
    files = 0
    for recording in held.only("pk", "stored_name"):
        if recording.stored_name:
            recordings.path_of(recording).unlink(missing_ok=True)
            files += 1
    # ABSENT, not PENDING: a download still queued finds nothing to fetch (recordings.store).
    held.update(state=RecordingState.ABSENT, stored_name="", error=DELETED)
    yield "recordings", files


def scrub_contacts(ids: list[UUID]) -> Iterable[tuple[str, int]]:
    return ()


PART = RetentionPart("voice", scrub_conversations, scrub_contacts)


def register() -> None:
    parts.register(PART)
    personal_event_keys(CALL_STARTED.name, "from_number")
