"""Call recordings: Twilio records, TalIA keeps an encrypted copy, staff play it.

Invariants:
- Nothing is recorded without a valid key: `active()` is TALIA_VOICE_RECORD with a usable
  TALIA_RECORDING_KEY, and both the disclosure and the TwiML's `<Start><Recording>` follow it (the system
  check channels_voice.E002 refuses to start with recording on and no valid key).
- One VoiceRecording per RecordingSid; a repeated status callback changes nothing and the download is
  queued once, when Twilio first reports the recording `completed`.
- The audio never touches the disk in clear: it is downloaded into memory, encrypted with Fernet and
  written (atomically) to TALIA_RECORDINGS_DIR; playback decrypts in memory (`audio()`).
- Twilio's copy is deleted only after the encrypted one is written, and only with
  TALIA_VOICE_DELETE_REMOTE.

Twilio is reached with the official SDK through `talia.twilio.rest_client()` (its client and HTTP
session), every api.twilio.com URL rebased to TALIA_TWILIO_API_BASE when set (the fake Twilio of the
tests).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from channels_voice.models import RecordingState, VoiceCall, VoiceRecording
from channels_voice.services import InvalidWebhook, UnknownCall
from talia import enqueue, twilio

logger = logging.getLogger("talia.voice")

TASK = "channels_voice.tasks.store_recording"
CALLBACK_PATH = "/api/voice/recording"
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
# RecordingStatus values of Twilio's recording status callback.
TWILIO_STATUSES = frozenset({"in-progress", "paused", "stopped", "processing", "completed", "absent", "failed"})
SUFFIX = ".wav.fernet"


# --- The key ---------------------------------------------------------------------------------------


def key_problem() -> str | None:
    """Why TALIA_RECORDING_KEY cannot encrypt (unset, or not Fernet keys), or None when it can."""
    raw = settings.TALIA_RECORDING_KEY.strip()
    if not raw:
        return "TALIA_RECORDING_KEY is not set."
    try:
        _cipher(raw)
    except ValueError:
        return "TALIA_RECORDING_KEY is not a Fernet key (32 url-safe base64-encoded bytes, comma-separated to rotate)."
    return None


@functools.lru_cache(maxsize=4)
def _cipher(raw: str) -> MultiFernet:
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    if not keys:
        raise ValueError("no key")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def cipher() -> MultiFernet:
    """The recordings' cipher: the first key encrypts, any decrypts. Raises RecordingError without a key."""
    if (problem := key_problem()) is not None:
        raise RecordingError(problem, permanent=True)
    return _cipher(settings.TALIA_RECORDING_KEY.strip())


def active() -> bool:
    """Whether calls are recorded now: TALIA_VOICE_RECORD on, with a valid key."""
    return bool(settings.TALIA_VOICE_RECORD) and key_problem() is None


# --- Twilio ----------------------------------------------------------------------------------------


class RecordingError(Exception):
    """A recording could not be fetched, stored or deleted; `permanent` says whether a retry can help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def client() -> Client:
    """Twilio's REST client (talia.twilio); a permanent RecordingError without credentials."""
    try:
        return twilio.rest_client()
    except twilio.NotConfigured as exc:
        raise RecordingError(f"Twilio is not configured: {exc}", permanent=True) from exc


def _media_url(recording_sid: str) -> str:
    """The recording's audio as WAV, built from its SID (never a URL from a request)."""
    return f"{twilio.TWILIO_API}/2010-04-01/Accounts/{settings.TALIA_TWILIO_ACCOUNT_SID}/Recordings/{recording_sid}.wav"


def _download(recording_sid: str) -> tuple[bytes, str]:
    """The recording's WAV bytes and content type, through the SDK client's own HTTP session and auth."""
    rest = client()
    session = getattr(rest.http_client, "session", None) or requests.Session()
    url = twilio.rebase(_media_url(recording_sid), settings.TALIA_TWILIO_API_BASE)
    try:
        response = session.get(url, auth=rest.auth, timeout=settings.TALIA_TWILIO_TIMEOUT_S, allow_redirects=True)
    except requests.RequestException as exc:
        raise RecordingError(f"Twilio could not be reached: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise RecordingError(
            f"Twilio answered {response.status_code} for recording {recording_sid}",
            permanent=response.status_code in (400, 401, 403, 404, 410),
        )
    return response.content, response.headers.get("Content-Type", "audio/x-wav").split(";")[0].strip()


def _delete_remote(recording_sid: str) -> None:
    """Delete Twilio's copy (already gone counts as deleted)."""
    try:
        client().recordings(recording_sid).delete()
    except TwilioRestException as exc:
        if exc.status == 404:
            return
        raise RecordingError(
            f"Twilio refused to delete {recording_sid}: HTTP {exc.status}",
            permanent=400 <= exc.status < 500 and exc.status != 429,
        ) from exc
    except requests.RequestException as exc:
        raise RecordingError(f"Twilio could not be reached: {type(exc).__name__}") from exc


# --- The status callback ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingCallback:
    recording_sid: str
    call_sid: str
    status: str
    duration_s: int | None


def parse_callback(params: Any) -> RecordingCallback:
    """Twilio's recording status callback, checked field by field; raises InvalidWebhook."""
    problems: dict[str, str] = {}
    recording_sid = (params.get("RecordingSid") or "").strip()
    call_sid = (params.get("CallSid") or "").strip()
    status = (params.get("RecordingStatus") or "").strip()
    raw_duration = (params.get("RecordingDuration") or "").strip()
    if not RECORDING_SID.fullmatch(recording_sid):
        problems["RecordingSid"] = "A Twilio recording SID (RE followed by 32 hex digits) is required."
    if not call_sid:
        problems["CallSid"] = "This field is required."
    elif len(call_sid) > 64:
        problems["CallSid"] = "At most 64 characters."
    if status not in TWILIO_STATUSES:
        problems["RecordingStatus"] = f"Must be one of {', '.join(sorted(TWILIO_STATUSES))}."
    duration = None
    if raw_duration:
        if raw_duration.isdigit() and len(raw_duration) <= 9:
            duration = int(raw_duration)
        else:
            problems["RecordingDuration"] = "Must be a whole number."
    if problems:
        raise InvalidWebhook(problems)
    return RecordingCallback(recording_sid, call_sid, status, duration)


def apply_callback(callback: RecordingCallback) -> str:
    """Record what Twilio says of a recording: 'queued' (completed: download queued), 'recorded',
    'absent', 'failed', or 'ignored' (a repeat, or news after the recording completed). Raises UnknownCall."""
    with transaction.atomic():
        call = VoiceCall.objects.filter(call_sid=callback.call_sid).first()
        if call is None:
            raise UnknownCall(callback.call_sid)
        recording, _created = VoiceRecording.objects.get_or_create(
            recording_sid=callback.recording_sid, defaults={"call": call}
        )
        recording = VoiceRecording.objects.select_for_update().get(pk=recording.pk)
        if recording.call_id != call.pk:
            raise InvalidWebhook({"CallSid": "This recording belongs to another call."})
        if recording.state != RecordingState.RECORDING:
            return "ignored"  # already completed, absent or failed: Twilio repeating itself
        recording.twilio_status = callback.status
        if callback.duration_s is not None:
            recording.duration_s = callback.duration_s
        result = "recorded"
        if callback.status == "completed":
            recording.state = RecordingState.PENDING
            result = "queued"
            enqueue.after_commit(TASK, recording.pk, what="call recording download")
        elif callback.status == "absent":
            recording.state, result = RecordingState.ABSENT, "absent"
        elif callback.status == "failed":
            recording.state, recording.error, result = RecordingState.FAILED, "Twilio's recording failed.", "failed"
        recording.save(update_fields=["twilio_status", "duration_s", "state", "error"])
    return result


# --- Storing and playing ---------------------------------------------------------------------------


def path_of(recording: VoiceRecording) -> Path:
    return Path(settings.TALIA_RECORDINGS_DIR) / recording.stored_name


def _write_encrypted(name: str, token: bytes) -> None:
    """Write the ciphertext to TALIA_RECORDINGS_DIR/name atomically (a temp file, then a rename)."""
    directory = Path(settings.TALIA_RECORDINGS_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".part-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(token)
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def store(recording_id: int) -> str:
    """Download a completed recording, keep it encrypted, then delete Twilio's copy when configured.

    Returns the state reached ('stored', or the state it already had). Raises RecordingError (the task
    retries the temporary ones). Running it again is harmless: a stored recording is not fetched twice.
    """
    recording = VoiceRecording.objects.filter(pk=recording_id).first()
    if recording is None:
        return "missing"
    if recording.state == RecordingState.PENDING:
        encrypt = cipher()  # before any download: without a key, nothing is fetched
        audio, content_type = _download(recording.recording_sid)
        name = f"{recording.recording_sid}{SUFFIX}"
        _write_encrypted(name, encrypt.encrypt(audio))
        with transaction.atomic():
            locked = VoiceRecording.objects.select_for_update().get(pk=recording.pk)
            if locked.state == RecordingState.PENDING:
                locked.state = RecordingState.STORED
                locked.stored_name, locked.content_type, locked.size = name, content_type[:64], len(audio)
                locked.stored_at, locked.error = timezone.now(), ""
                locked.save(update_fields=["state", "stored_name", "content_type", "size", "stored_at", "error"])
            recording = locked
    if recording.state != RecordingState.STORED:
        return str(recording.state)
    if settings.TALIA_VOICE_DELETE_REMOTE and recording.remote_deleted_at is None:
        _delete_remote(recording.recording_sid)
        VoiceRecording.objects.filter(pk=recording.pk).update(remote_deleted_at=timezone.now())
    return RecordingState.STORED.value


def failed(recording_id: int, error: str) -> None:
    """Work given up on: a download marks the recording failed (Twilio keeps its copy); a remote delete
    that failed leaves it stored, with the reason."""
    VoiceRecording.objects.filter(pk=recording_id, state=RecordingState.PENDING).update(state=RecordingState.FAILED)
    VoiceRecording.objects.filter(pk=recording_id).update(error=error[:2000])
    logger.warning("Recording %s could not be stored: %s", recording_id, error)


def retry(recordings: Any) -> int:
    """Queue the download again for failed recordings Twilio completed (a staff action); returns how many."""
    queued = 0
    for recording in recordings:
        with transaction.atomic():
            changed = VoiceRecording.objects.filter(
                pk=recording.pk, state=RecordingState.FAILED, twilio_status="completed"
            ).update(state=RecordingState.PENDING, error="")
            if changed:
                enqueue.after_commit(TASK, recording.pk, what="call recording download")
                queued += 1
    return queued


def remove_file(sender: Any, instance: VoiceRecording, **kwargs: Any) -> None:
    """post_delete: a deleted recording takes its encrypted file with it."""
    if instance.stored_name:
        path_of(instance).unlink(missing_ok=True)


def audio(recording: VoiceRecording) -> bytes:
    """The recording's audio in clear, decrypted in memory. Raises RecordingError when it cannot be."""
    if recording.state != RecordingState.STORED or not recording.stored_name:
        raise RecordingError("The recording is not stored.", permanent=True)
    try:
        token = path_of(recording).read_bytes()
    except OSError as exc:
        raise RecordingError(f"The encrypted file cannot be read: {exc.strerror}", permanent=True) from exc
    try:
        return cipher().decrypt(token)
    except InvalidToken as exc:
        raise RecordingError("The recording cannot be decrypted with TALIA_RECORDING_KEY.", permanent=True) from exc
