"""Call recordings: off by default; on (with a key) the disclosure says so and the TwiML starts Twilio's
recording; the signed recording-status callback queues one download, which keeps the audio encrypted at
rest (the fake Twilio serves a real WAV), deletes Twilio's copy only when configured, and staff alone play
it back decrypted."""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.test import Client

from channels_voice import recordings
from channels_voice.checks import recording_key_valid
from channels_voice.models import RecordingState, VoiceCall, VoiceRecording
from channels_voice.tasks import store_recording
from channels_voice.tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Caller, child, parse, says
from talia.testing.fake_twilio import FakeTwilio
from talia.testing.plugin import wait_for

pytestmark = pytest.mark.django_db

RECORDING = "/api/voice/recording"


def tone_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A real WAV file (8 kHz, 16-bit mono, a 440 Hz tone), as Twilio serves recordings."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (int(12000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate)))
        out.writeframes(b"".join(struct.pack("<h", sample) for sample in samples))
    return buffer.getvalue()


@pytest.fixture
def wav() -> bytes:
    return tone_wav()


@pytest.fixture
def fake(settings: Any, tmp_path: Path) -> Iterator[FakeTwilio]:
    """The fake Twilio (with the voice tests' account), recording on with a fresh key, files in tmp."""
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as twilio:
        settings.TALIA_TWILIO_API_BASE = twilio.base_url
        settings.TALIA_TWILIO_API_KEY_SID = ""
        settings.TALIA_TWILIO_API_KEY_SECRET = ""
        settings.TALIA_VOICE_RECORD = True
        settings.TALIA_RECORDING_KEY = Fernet.generate_key().decode()
        settings.TALIA_RECORDINGS_DIR = tmp_path / "recordings"
        yield twilio


def recording_params(caller: Caller, recording_sid: str, url: str, status: str = "completed") -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": caller.call_sid,
        "RecordingSid": recording_sid,
        "RecordingUrl": url,
        "RecordingStatus": status,
        "RecordingDuration": "1",
        "RecordingChannels": "1",
        "RecordingSource": "StartCallRecordingTwiML",
        "RecordingStartTime": "Sun, 29 Nov 2026 20:00:00 +0000",
    }


def recording_downloads(fake: FakeTwilio, recording_sid: str) -> int:
    return sum(1 for r in fake.requests if r.method == "GET" and f"/Recordings/{recording_sid}" in r.path)


def remote_deletes(fake: FakeTwilio) -> list[str]:
    return [r.path for r in fake.requests if r.method == "DELETE"]


# --- The greeting ------------------------------------------------------------------------------------


def test_recording_is_off_by_default_and_the_disclosure_says_so(caller: Caller):
    root = caller.dial()

    assert root.find("Start") is None
    assert "Esta llamada no se graba" in says(root)[0]


def test_with_recording_on_the_disclosure_says_so_then_twilio_records(caller: Caller, fake: FakeTwilio):
    root = caller.dial()

    say, start, gather = list(root)
    assert say.tag == "Say" and "Esta llamada se graba" in (say.text or "") and "no se graba" not in (say.text or "")
    assert start.tag == "Start" and gather.tag == "Gather"
    recording = child(start, "Recording")
    assert recording.get("recordingStatusCallback") == "http://testserver/api/voice/recording"
    assert recording.get("recordingStatusCallbackMethod") == "POST"
    assert recording.get("recordingStatusCallbackEvent") == "completed absent"


def test_the_english_disclosure_says_the_call_is_recorded(client: Client, fake: FakeTwilio):
    root = Caller(client, number="+447700900123").dial()

    [disclosure] = says(root)
    assert "This call is recorded" in disclosure and "not recorded" not in disclosure
    assert root.find("Start/Recording") is not None


def test_the_callback_is_on_the_public_url_behind_a_proxy(caller: Caller, fake: FakeTwilio, settings: Any):
    settings.TALIA_PUBLIC_BASE_URL = "https://talia.example.com"

    root = parse(
        caller.post("/api/voice/inbound", caller.params(), sign_url="https://talia.example.com/api/voice/inbound")
    )

    assert (
        child(root, "Start/Recording").get("recordingStatusCallback") == "https://talia.example.com/api/voice/recording"
    )


@pytest.mark.parametrize("key", ["", "not-a-fernet-key"])
def test_without_a_valid_key_nothing_is_recorded_and_the_caller_is_told_so(
    caller: Caller, fake: FakeTwilio, settings: Any, key: str
):
    settings.TALIA_RECORDING_KEY = key

    root = caller.dial()

    assert root.find("Start") is None
    assert "no se graba" in says(root)[0]


def test_a_configured_disclosure_is_said_as_is(caller: Caller, fake: FakeTwilio, settings: Any):
    settings.TALIA_VOICE_DISCLOSURE_ES = "Hablas con una IA de Acme; grabamos la llamada."

    root = caller.dial()

    assert says(root) == ["Hablas con una IA de Acme; grabamos la llamada."]
    assert root.find("Start/Recording") is not None


# --- The system check ----------------------------------------------------------------------------------


def check_ids() -> list[str]:
    return [message.id for message in recording_key_valid() if message.level >= checks.ERROR and message.id]


def test_the_check_refuses_recording_without_a_valid_key(settings: Any):
    settings.TALIA_VOICE_RECORD = True
    settings.TALIA_RECORDING_KEY = ""
    assert check_ids() == ["channels_voice.E002"]

    settings.TALIA_RECORDING_KEY = "c2hvcnQ="
    assert check_ids() == ["channels_voice.E002"]

    settings.TALIA_RECORDING_KEY = Fernet.generate_key().decode()
    assert check_ids() == []


def test_the_check_is_quiet_with_recording_off_and_no_key(settings: Any):
    settings.TALIA_VOICE_RECORD = False
    settings.TALIA_RECORDING_KEY = ""
    assert check_ids() == []

    settings.TALIA_RECORDING_KEY = "broken"  # a key set but unusable: stored recordings could not be played
    assert check_ids() == ["channels_voice.E002"]


def test_two_keys_rotate_the_first_encrypts_and_both_decrypt(settings: Any):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    settings.TALIA_RECORDING_KEY = old.decode()
    token = recordings.cipher().encrypt(b"RIFF old")

    settings.TALIA_RECORDING_KEY = f"{new.decode()}, {old.decode()}"

    assert recordings.cipher().decrypt(token) == b"RIFF old"
    assert Fernet(new).decrypt(recordings.cipher().encrypt(b"RIFF new")) == b"RIFF new"


# --- The status callback -------------------------------------------------------------------------------


def test_a_forged_or_unsigned_callback_is_refused_and_nothing_stored(caller: Caller, fake: FakeTwilio, wav: bytes):
    caller.dial()
    recording_sid, url = fake.add_recording(wav)
    params = recording_params(caller, recording_sid, url)

    forged = caller.post(RECORDING, params, signature="Zm9yZ2Vk")
    unsigned = caller.post(RECORDING, params, signature="")

    assert forged.status_code == 403 and forged.json()["error"]["code"] == "invalid_signature"
    assert unsigned.status_code == 403 and unsigned.json()["error"]["code"] == "missing_signature"
    assert not VoiceRecording.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"RecordingSid": "RE123"}, "RecordingSid"),
        ({"RecordingSid": ""}, "RecordingSid"),
        ({"RecordingStatus": "exploded"}, "RecordingStatus"),
        ({"RecordingDuration": "a while"}, "RecordingDuration"),
        ({"CallSid": ""}, "CallSid"),
    ],
)
def test_a_malformed_callback_is_400_naming_the_field(
    caller: Caller, fake: FakeTwilio, wav: bytes, changes: dict[str, str], field: str
):
    caller.dial()
    recording_sid, url = fake.add_recording(wav)

    response = caller.post(RECORDING, {**recording_params(caller, recording_sid, url), **changes})

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not VoiceRecording.objects.exists()


def test_a_callback_for_an_unknown_call_is_404(caller: Caller, fake: FakeTwilio, wav: bytes):
    recording_sid, url = fake.add_recording(wav)

    response = caller.post(RECORDING, recording_params(caller, recording_sid, url))

    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_call"
    assert not VoiceRecording.objects.exists()


def test_a_repeated_completed_callback_is_applied_once(
    caller: Caller, fake: FakeTwilio, wav: bytes, django_capture_on_commit_callbacks: Any
):
    caller.dial()
    recording_sid, url = fake.add_recording(wav)
    params = recording_params(caller, recording_sid, url)

    with django_capture_on_commit_callbacks() as first_enqueues:
        first = caller.post(RECORDING, params)
    with django_capture_on_commit_callbacks() as repeat_enqueues:
        repeated = caller.post(RECORDING, params)

    assert (first.json(), repeated.json()) == ({"status": "queued"}, {"status": "ignored"})
    assert (len(first_enqueues), len(repeat_enqueues)) == (1, 0)
    recording = VoiceRecording.objects.get()
    assert recording.call == VoiceCall.objects.get(call_sid=caller.call_sid)
    assert (recording.state, recording.twilio_status, recording.duration_s) == (RecordingState.PENDING, "completed", 1)


def test_an_absent_recording_is_noted_and_nothing_downloaded(caller: Caller, fake: FakeTwilio, wav: bytes):
    caller.dial()
    recording_sid, url = fake.add_recording(wav)

    response = caller.post(RECORDING, recording_params(caller, recording_sid, url, status="absent"))

    assert response.json() == {"status": "absent"}
    assert VoiceRecording.objects.get().state == RecordingState.ABSENT
    assert recording_downloads(fake, recording_sid) == 0


@pytest.mark.django_db(transaction=True)
def test_the_whole_path_through_a_real_worker_stores_it_once(
    caller: Caller, fake: FakeTwilio, wav: bytes, celery_worker: Any, settings: Any
):
    caller.dial()
    recording_sid, url = fake.add_recording(wav)
    params = recording_params(caller, recording_sid, url)

    assert caller.post(RECORDING, params).json() == {"status": "queued"}
    recording = wait_for(lambda: VoiceRecording.objects.filter(state=RecordingState.STORED).first())
    assert caller.post(RECORDING, params).json() == {"status": "ignored"}

    assert recordings.audio(recording) == wav
    assert recording_downloads(fake, recording_sid) == 1
    assert fake.has_recording(recording_sid)  # TALIA_VOICE_DELETE_REMOTE is off: Twilio keeps its copy


# --- Storing -------------------------------------------------------------------------------------------


def completed(caller: Caller, fake: FakeTwilio, wav: bytes) -> VoiceRecording:
    """A call whose recording Twilio reported completed: its VoiceRecording, waiting for the download."""
    caller.dial()
    recording_sid, url = fake.add_recording(wav)
    assert caller.post(RECORDING, recording_params(caller, recording_sid, url)).status_code == 200
    return VoiceRecording.objects.get(recording_sid=recording_sid)


def test_the_download_is_kept_encrypted_never_in_clear(caller: Caller, fake: FakeTwilio, wav: bytes, settings: Any):
    recording = completed(caller, fake, wav)

    assert recordings.store(recording.pk) == "stored"

    recording.refresh_from_db()
    assert recording.state == RecordingState.STORED and recording.size == len(wav)
    on_disk = recordings.path_of(recording).read_bytes()
    assert wav.startswith(b"RIFF") and not on_disk.startswith(b"RIFF")
    assert on_disk != wav and wav[44:1044] not in on_disk  # not the WAV, nor its samples
    assert Fernet(settings.TALIA_RECORDING_KEY.encode()).decrypt(on_disk) == wav
    assert [p.name for p in Path(settings.TALIA_RECORDINGS_DIR).iterdir()] == [recording.stored_name]
    assert remote_deletes(fake) == [] and fake.has_recording(recording.recording_sid)
    [download] = [r for r in fake.requests if r.method == "GET"]
    assert download.auth == (ACCOUNT_SID, AUTH_TOKEN)


def test_twilios_copy_is_deleted_when_configured(caller: Caller, fake: FakeTwilio, wav: bytes, settings: Any):
    settings.TALIA_VOICE_DELETE_REMOTE = True
    recording = completed(caller, fake, wav)

    assert recordings.store(recording.pk) == "stored"
    assert recordings.store(recording.pk) == "stored"  # run again: neither fetched nor deleted twice

    recording.refresh_from_db()
    assert recording.remote_deleted_at is not None
    assert fake.recordings_deleted == [recording.recording_sid] and not fake.has_recording(recording.recording_sid)
    assert remote_deletes(fake) == [f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording.recording_sid}.json"]
    assert recording_downloads(fake, recording.recording_sid) == 1
    assert recordings.audio(recording) == wav


def test_nothing_is_downloaded_without_a_key(caller: Caller, fake: FakeTwilio, wav: bytes, settings: Any):
    recording = completed(caller, fake, wav)
    settings.TALIA_RECORDING_KEY = ""

    assert store_recording.apply(args=(recording.pk,)).get() == "failed"

    recording.refresh_from_db()
    assert recording.state == RecordingState.FAILED and "TALIA_RECORDING_KEY" in recording.error
    assert recording_downloads(fake, recording.recording_sid) == 0
    assert not Path(settings.TALIA_RECORDINGS_DIR).exists()


def test_a_temporary_failure_is_retried(caller: Caller, fake: FakeTwilio, wav: bytes):
    recording = completed(caller, fake, wav)
    fake.fail_next(1, status=503)

    assert store_recording.apply(args=(recording.pk,)).get() == "stored"  # eager: the retry runs at once

    assert recording_downloads(fake, recording.recording_sid) == 2
    recording.refresh_from_db()
    assert recordings.audio(recording) == wav


def test_a_recording_twilio_no_longer_has_fails_for_good(caller: Caller, fake: FakeTwilio, wav: bytes):
    recording = completed(caller, fake, wav)
    with fake._lock:
        del fake.state.recordings[recording.recording_sid]

    assert store_recording.apply(args=(recording.pk,)).get() == "failed"

    recording.refresh_from_db()
    assert recording.state == RecordingState.FAILED and "404" in recording.error
    assert recording_downloads(fake, recording.recording_sid) == 1


def test_the_task_runs_on_the_bulk_queue(settings: Any):
    from talia.celery import app

    route = app.amqp.router.route({}, recordings.TASK)
    assert route["queue"].name == settings.TALIA_QUEUES["ingest"]


# --- Playback ------------------------------------------------------------------------------------------


@pytest.fixture
def stored(caller: Caller, fake: FakeTwilio, wav: bytes) -> VoiceRecording:
    recording = completed(caller, fake, wav)
    recordings.store(recording.pk)
    recording.refresh_from_db()
    return recording


def test_staff_play_the_original_audio(client: Client, stored: VoiceRecording, wav: bytes, django_user_model: Any):
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))

    response = client.get(f"/voice/recordings/{stored.recording_sid}")

    assert response.status_code == 200 and response.content == wav
    assert response["Content-Type"].startswith("audio/")
    assert "no-store" in response["Cache-Control"]


def test_an_agent_who_is_not_staff_is_refused(client: Client, stored: VoiceRecording, agent: Any):
    client.force_login(agent)

    response = client.get(f"/voice/recordings/{stored.recording_sid}")

    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_anonymous_visitors_are_sent_to_log_in(client: Client, stored: VoiceRecording):
    response = client.get(f"/voice/recordings/{stored.recording_sid}")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_recording_not_yet_stored_is_not_playable(
    client: Client, caller: Caller, fake: FakeTwilio, wav: bytes, django_user_model: Any
):
    pending = completed(caller, fake, wav)
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))

    assert client.get(f"/voice/recordings/{pending.recording_sid}").status_code == 409
    assert client.get("/voice/recordings/RE" + "0" * 32).status_code == 404


def test_the_admin_shows_the_state_and_a_play_link(client: Client, stored: VoiceRecording, django_user_model: Any):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))

    calls = client.get("/admin/channels_voice/voicecall/")
    recordings_page = client.get("/admin/channels_voice/voicerecording/")

    for page in (calls, recordings_page):
        assert page.status_code == 200
        assert f'href="/voice/recordings/{stored.recording_sid}"' in page.content.decode()


def test_the_calls_api_shows_the_recording_and_a_play_url_to_staff_only(
    client: Client, stored: VoiceRecording, agent: Any, django_user_model: Any
):
    path = f"/api/voice/calls/{stored.call.call_sid}"
    client.force_login(agent)
    for_agent = client.get(path).json()["recording"]
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    for_staff = client.get(path).json()["recording"]

    assert for_agent == {"state": "stored", "duration_s": 1, "play_url": None}
    assert for_staff == {**for_agent, "play_url": f"/voice/recordings/{stored.recording_sid}"}
    assert client.get(for_staff["play_url"]).status_code == 200


def test_a_failed_download_can_be_queued_again_from_the_admin(
    client: Client,
    caller: Caller,
    fake: FakeTwilio,
    wav: bytes,
    django_user_model: Any,
    django_capture_on_commit_callbacks: Any,
):
    recording = completed(caller, fake, wav)
    fake.fail_next(1, status=404)
    assert store_recording.apply(args=(recording.pk,)).get() == "failed"
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))

    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        response = client.post(
            "/admin/channels_voice/voicerecording/", {"action": "download_again", "_selected_action": [recording.pk]}
        )

    assert response.status_code == 302 and len(enqueued) == 1
    recording.refresh_from_db()
    assert recording.state == RecordingState.PENDING and recording.error == ""
    assert recordings.store(recording.pk) == "stored" and recordings.audio(recording.__class__.objects.get()) == wav


def test_deleting_a_recording_removes_its_encrypted_file(stored: VoiceRecording):
    path = recordings.path_of(stored)
    assert path.exists()

    stored.call.delete()

    assert not VoiceRecording.objects.exists() and not path.exists()
