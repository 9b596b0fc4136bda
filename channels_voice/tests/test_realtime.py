"""Realtime mode: the inbound TwiML that starts a media stream, and whole calls bridged over real sockets.

A running Daphne serves `WS /api/voice/stream`; a Media Streams client (talia.testing.media_streams)
plays real speech (espeak-ng → sox, μ-law 8 kHz) into it and echoes marks like Twilio; the bridge talks
to the fake Realtime API (talia.testing.fake_realtime) through the real `openai` SDK, and to the fake
Twilio REST API through the real `twilio` SDK.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core import signing

from channels_voice import streaming, tokens
from channels_voice.models import CallMode, VoiceCall
from channels_voice.tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Caller, child, new_call_sid, says, sign
from conversations import inbox
from conversations.models import AssistantRun, ConversationStatus, Event, Message, Sender, ToolCall
from talia.testing.browser import LiveServer
from talia.testing.fake_realtime import FakeRealtime, Turn
from talia.testing.fake_twilio import FakeTwilio
from talia.testing.media_streams import MediaStreamClient, speech
from talia.testing.plugin import wait_for

API_KEY = "sk-realtime-test"
TRANSFER_NUMBER = "+34910111222"
PACE = 4.0  # the phone plays and speaks four times faster than real time: only the wall clock changes
ANSWER_MS = 1000


# --- The inbound webhook in realtime mode (in-process) ------------------------------------------------


@pytest.fixture
def realtime_mode(settings: Any) -> None:
    settings.TALIA_VOICE_MODE = "realtime"


def stream_of(root: ET.Element) -> tuple[str, dict[str, str]]:
    stream = child(root, "Connect/Stream")
    return stream.get("url", ""), {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}


@pytest.mark.django_db
def test_a_signed_call_in_realtime_mode_hears_the_disclosure_then_streams(caller: Caller, realtime_mode: None):
    root = caller.dial()

    verbs = [element.tag for element in root]
    url, parameters = stream_of(root)
    call = VoiceCall.objects.get(call_sid=caller.call_sid)
    assert verbs[:2] == ["Say", "Connect"]
    assert "inteligencia artificial" in says(root)[0]
    assert url == "ws://testserver/api/voice/stream" and "?" not in url
    assert parameters["call_sid"] == caller.call_sid
    assert parameters["conversation_id"] == str(call.conversation_id)
    assert tokens.check(parameters["token"], caller.call_sid) == tokens.StreamGrant(
        caller.call_sid, str(call.conversation_id)
    )
    assert call.mode == CallMode.REALTIME
    # After the stream, only reached if the bridge closes it without replacing the TwiML: speech turns.
    assert verbs[2:] == ["Say", "Gather"]


@pytest.mark.django_db
def test_a_recorded_realtime_call_is_told_then_recording_starts_before_the_stream(
    caller: Caller, realtime_mode: None, settings: Any
):
    settings.TALIA_VOICE_RECORD = True
    settings.TALIA_RECORDING_KEY = Fernet.generate_key().decode()

    root = caller.dial()

    assert [element.tag for element in root][:3] == ["Say", "Start", "Connect"]
    assert "se graba" in says(root)[0] and "no se graba" not in says(root)[0]
    recording = child(root, "Start/Recording")
    assert recording.get("recordingStatusCallback", "").endswith("/api/voice/recording")


@pytest.mark.django_db
def test_behind_https_the_stream_url_is_wss(caller: Caller, realtime_mode: None, settings: Any):
    settings.TALIA_PUBLIC_BASE_URL = "https://talia.example.com"
    caller.base = settings.TALIA_PUBLIC_BASE_URL

    url, _ = stream_of(caller.dial())

    assert url == "wss://talia.example.com/api/voice/stream"


@pytest.mark.django_db
def test_a_forged_call_in_realtime_mode_is_refused_and_nothing_is_stored(caller: Caller, realtime_mode: None):
    response = caller.post("/api/voice/inbound", caller.params(CallStatus="ringing"), signature="Zm9yZ2Vk")

    assert response.status_code == 403 and response.json()["error"]["code"]
    assert not VoiceCall.objects.exists()


@pytest.mark.django_db
def test_in_gather_mode_the_inbound_answer_has_no_stream(caller: Caller, settings: Any):
    settings.TALIA_VOICE_MODE = "gather"

    root = caller.dial()

    assert root.find("Connect") is None and root.find("Gather") is not None
    assert VoiceCall.objects.get(call_sid=caller.call_sid).mode == CallMode.GATHER


def test_stream_tokens_are_bound_to_their_call_and_expire(settings: Any):
    token = tokens.issue("CA" + "a" * 32, "conversation-1")

    assert tokens.check(token, "CA" + "a" * 32) is not None
    assert tokens.check(token, "CA" + "b" * 32) is None
    assert tokens.check(token[:-2] + "xx", "CA" + "a" * 32) is None
    forged = signing.dumps({"call": "CA" + "a" * 32, "conversation": "c"}, key="another key", salt=tokens.SALT)
    assert tokens.check(forged, "CA" + "a" * 32) is None
    settings.TALIA_VOICE_STREAM_TOKEN_TTL_S = -1  # already expired
    assert tokens.check(token, "CA" + "a" * 32) is None


# --- Whole calls over Daphne ------------------------------------------------------------------------


@dataclass
class Rig:
    server: LiveServer
    realtime: FakeRealtime
    twilio: FakeTwilio

    def dial(self) -> tuple[str, str, dict[str, str]]:
        """A signed inbound call posted to Daphne: its CallSid, and the Stream URL and parameters."""
        call_sid = new_call_sid()
        params = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": "+34600111222", "To": "+34910000000",
                  "CallStatus": "ringing", "Direction": "inbound"}  # fmt: skip
        url = f"{self.server.url}/api/voice/inbound"
        request = urllib.request.Request(  # noqa: S310 (the test's own server)
            url, data=urllib.parse.urlencode(params).encode(), headers={"X-Twilio-Signature": sign(url, params)}
        )
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            root = ET.fromstring(response.read())  # noqa: S314 (TalIA's own answer, in a test)
        stream_url, parameters = stream_of(root)
        return call_sid, stream_url, parameters


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, settings: Any, request: pytest.FixtureRequest) -> Iterator[Rig]:
    with FakeRealtime(api_key=API_KEY) as realtime, FakeTwilio() as twilio:
        twilio.account_sid, twilio.auth_token = ACCOUNT_SID, AUTH_TOKEN
        settings.OPENAI_API_KEY = API_KEY  # handed to Daphne by talia.testing.browser.server_env
        monkeypatch.setenv("TALIA_VOICE_MODE", "realtime")
        monkeypatch.setenv("TALIA_OPENAI_REALTIME_URL", realtime.ws_base)
        monkeypatch.setenv("TALIA_TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        monkeypatch.setenv("TALIA_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        monkeypatch.setenv("TALIA_TWILIO_API_BASE", twilio.base_url)
        monkeypatch.setenv("TALIA_VOICE_TRANSFER_NUMBER", TRANSFER_NUMBER)
        server: LiveServer = request.getfixturevalue("daphne_server")
        yield Rig(server, realtime, twilio)


@pytest.fixture(scope="module")
def voices() -> dict[str, bytes]:
    """Real speech for the caller's utterances (no commas: a pause is not the end of a turn)."""
    return {
        "name": speech("Hola me llamo Ana García y quiero que me llaméis", "es"),
        "hours": speech("Qué horario tenéis los sábados", "es"),
        "interrupt": speech("Perdona otra cosa", "es"),
    }


def transcript_of(call_sid: str) -> list[tuple[str, str]]:
    conversation_id = VoiceCall.objects.get(call_sid=call_sid).conversation_id
    assert conversation_id is not None
    return [(m.sender, m.text) for m in Message.objects.filter(conversation_id=conversation_id).order_by("seq")]


def segment_events(call_sid: str) -> list[dict[str, Any]]:
    return [
        e.payload
        for e in Event.objects.filter(name="transcript_segment").order_by("id")
        if e.payload["call_sid"] == call_sid
    ]


@pytest.mark.django_db(transaction=True)
def test_a_realtime_call_with_a_tool_call_and_a_barge_in(rig: Rig, voices: dict[str, bytes]):
    rig.realtime.turns = [
        Turn(
            "Hola, me llamo Ana García y quiero que me llaméis.",
            say="Gracias, Ana. He guardado tu nombre.",
            calls=[("record_consent", {"granted": True}), ("set_full_name", {"full_name": "Ana García"})],
        ),
        Turn("¿Qué horario tenéis los sábados?", say="Los sábados abrimos de diez a dos y...", audio_ms=3 * ANSWER_MS),
        Turn("Perdona, otra cosa.", say="Claro, dime.", audio_ms=600),
    ]
    call_sid, url, parameters = rig.dial()
    answer = ANSWER_MS * 8  # bytes of the first spoken answer

    async def call() -> MediaStreamClient:
        async with MediaStreamClient(url, call_sid, parameters, pace=PACE) as phone:
            await phone.say(voices["name"])
            assert await phone.wait_played(answer), "the first answer was not heard"
            await phone.say(voices["hours"])
            assert await phone.wait_played(answer + answer), "the second answer did not start playing"
            phone.hold()  # from here the caller hears nothing more of it: they talk over it
            await phone.say(voices["interrupt"])
            everything = answer + 3 * answer + 600 * 8
            assert await phone.until(lambda: phone.received_bytes == everything and phone.played == phone.queued)
            return phone

    phone = asyncio.run(call())

    connection = rig.realtime.connections[0]
    session = connection.session or {}
    assert (session["audio"]["input"]["format"], session["audio"]["output"]["format"]) == (
        {"type": "audio/pcmu"},
        {"type": "audio/pcmu"},
    )
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}  # any language
    assert "Contact locale: es" in session["instructions"]
    assert {"record_consent", "set_full_name", "request_human"} <= {tool["name"] for tool in session["tools"]}
    assert "Phone call" in session["instructions"]
    # The tool calls ran with the assistant's tools and consent rule, each answered then continued.
    outputs = [item["output"] for item in rig.realtime.function_outputs]
    assert len(outputs) == 2 and all('"ok": true' in output for output in outputs)
    assert sum(1 for event in connection.received if event["type"] == "response.create") == 2
    # Barge-in: Twilio was told to clear, and the item cut where the echoed marks say the caller was.
    [(first_item, first_len), (second_item, _second_len), _third] = rig.realtime.audio_items
    [truncate] = connection.truncations
    [heard] = phone.clears
    assert truncate["item_id"] == second_item
    assert truncate["audio_end_ms"] == (heard - first_len) // 8 > 0
    assert not connection.errors
    # The transcript, in spoken order, each piece a transcript_segment event; no text turn ran.
    expected = [
        (Sender.CONTACT, "Hola, me llamo Ana García y quiero que me llaméis."),
        (Sender.ASSISTANT, "Gracias, Ana. He guardado tu nombre."),
        (Sender.CONTACT, "¿Qué horario tenéis los sábados?"),
        (Sender.ASSISTANT, "Los sábados abrimos de diez a dos y..."),
        (Sender.CONTACT, "Perdona, otra cosa."),
        (Sender.ASSISTANT, "Claro, dime."),
    ]
    assert wait_for(lambda: len(transcript_of(call_sid)) >= 6) and transcript_of(call_sid) == expected
    events = wait_for(lambda: len(segment_events(call_sid)) == 6 and segment_events(call_sid))
    assert [e["speaker"] for e in events] == ["caller", "assistant"] * 3
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    voice_call = VoiceCall.objects.select_related("conversation__contact").get(call_sid=call_sid)
    assert voice_call.conversation is not None and voice_call.conversation.contact.full_name == "Ana García"
    # No text turn ran: the only runs are the realtime model's, holding its tool calls like a text turn's.
    runs = AssistantRun.objects.filter(conversation=voice_call.conversation)
    assert {(run.engine, run.status) for run in runs} == {("realtime", "completed")}
    stored = ToolCall.objects.filter(run__conversation=voice_call.conversation).order_by("created")
    assert [(c.name, c.arguments, c.status) for c in stored] == [
        ("record_consent", {"granted": True}, "ok"),
        ("set_full_name", {"full_name": "Ana García"}, "ok"),
    ]
    assert first_item != second_item


@pytest.mark.django_db(transaction=True)
def test_a_bad_token_closes_the_stream_before_any_realtime_session(rig: Rig):
    call_sid, url, parameters = rig.dial()
    other_sid, _, other_parameters = rig.dial()

    async def attempt(sid: str, params: dict[str, str]) -> int | None:
        async with MediaStreamClient(url, sid, params, pace=PACE) as phone:
            assert await phone.wait_closed()
            return phone.ws.close_code if phone.ws else None

    forged = asyncio.run(attempt(call_sid, {**parameters, "token": parameters["token"][:-4] + "AAAA"}))
    foreign = asyncio.run(attempt(call_sid, other_parameters))  # another call's valid token
    missing = asyncio.run(attempt(other_sid, {"call_sid": other_sid}))

    assert forged == foreign == missing == 4403
    assert rig.realtime.connections == []


@pytest.mark.django_db(transaction=True)
def test_the_realtime_socket_dropping_once_reconnects_with_the_conversation(rig: Rig, voices: dict[str, bytes]):
    rig.realtime.turns = [
        Turn("Hola, me llamo Ana.", say="Hola, Ana.", drop_after=True),
        # Its transcript comes only with response.done: the answer is stored all the same.
        Turn("¿Qué horario tenéis?", say="De nueve a seis.", transcript_event=False),
    ]
    call_sid, url, parameters = rig.dial()

    async def call() -> None:
        async with MediaStreamClient(url, call_sid, parameters, pace=PACE) as phone:
            await phone.say(voices["name"])
            assert await phone.wait_played(ANSWER_MS * 8)
            assert rig.realtime.wait_for(
                lambda: len(rig.realtime.connections) == 2 and rig.realtime.connections[1].session
            )
            await phone.say(voices["hours"])
            assert await phone.wait_played(2 * ANSWER_MS * 8)

    asyncio.run(call())

    first, second = rig.realtime.connections
    assert first.dropped and second.session == first.session
    replayed = [(item["role"], item["content"][0]["text"]) for item in second.items if item["type"] == "message"]
    assert replayed == [("user", "Hola, me llamo Ana."), ("assistant", "Hola, Ana.")]
    assert wait_for(lambda: len(transcript_of(call_sid)) >= 4) and transcript_of(call_sid) == [
        (Sender.CONTACT, "Hola, me llamo Ana."),
        (Sender.ASSISTANT, "Hola, Ana."),
        (Sender.CONTACT, "¿Qué horario tenéis?"),
        (Sender.ASSISTANT, "De nueve a seis."),
    ]
    assert rig.twilio.call_updates == []
    assert VoiceCall.objects.get(call_sid=call_sid).mode == CallMode.REALTIME


def drop_twice(rig: Rig, voices: dict[str, bytes], first: str, second: str) -> tuple[str, MediaStreamClient]:
    """A realtime call whose OpenAI socket drops after each of two caller turns; returns the call's sid and
    the phone once the bridge has ended the stream."""
    rig.realtime.turns = [Turn(first, say="OK.", drop_after=True), Turn(second, say="OK.", drop_after=True)]
    call_sid, url, parameters = rig.dial()

    async def call() -> MediaStreamClient:
        async with MediaStreamClient(url, call_sid, parameters, pace=PACE) as phone:
            await phone.say(voices["name"])
            assert await phone.wait_played(ANSWER_MS * 8)
            assert rig.realtime.wait_for(
                lambda: len(rig.realtime.connections) == 2 and rig.realtime.connections[1].session
            )
            await phone.say(voices["hours"])
            assert await phone.wait_closed(), "the bridge did not end the stream"
            return phone

    return call_sid, asyncio.run(call())


@pytest.mark.django_db(transaction=True)
def test_the_realtime_socket_dropping_twice_falls_back_to_gather(rig: Rig, voices: dict[str, bytes]):
    call_sid, phone = drop_twice(rig, voices, "Hola, me llamo Ana.", "¿Qué horario tenéis?")

    [update] = rig.twilio.call_updates
    root = ET.fromstring(update["Twiml"])  # noqa: S314 (what TalIA sent Twilio, in a test)
    assert update["sid"] == call_sid
    assert [element.tag for element in root] == ["Say", "Gather"]
    assert "se ha cortado" in (root.findtext("Say") or "")
    gather = child(root, "Gather")
    messages = transcript_of(call_sid)
    assert gather.get("input") == "speech" and gather.get("language") == "es-MX"
    assert gather.get("action") == f"/api/voice/gather?after={len(messages)}&silences=0"
    assert VoiceCall.objects.get(call_sid=call_sid).mode == CallMode.GATHER
    assert phone.close_code is not None
    assert [sender for sender, _ in messages] == [Sender.CONTACT, Sender.ASSISTANT] * 2


@pytest.mark.django_db(transaction=True)
def test_asking_for_a_person_on_a_realtime_call_transfers_it(rig: Rig, voices: dict[str, bytes]):
    rig.realtime.turns = [
        Turn("Quiero hablar con una persona.", calls=[("request_human", {"reason": "Pide una persona"})])
    ]
    call_sid, url, parameters = rig.dial()

    async def call() -> None:
        async with MediaStreamClient(url, call_sid, parameters, pace=PACE) as phone:
            await phone.say(voices["interrupt"])
            assert await phone.wait_closed(), "the bridge did not end the stream"

    asyncio.run(call())

    [output] = rig.realtime.function_outputs
    [update] = rig.twilio.call_updates
    root = ET.fromstring(update["Twiml"])  # noqa: S314 (what TalIA sent Twilio, in a test)
    assert '"ok": true' in output["output"]
    assert child(root, "Dial").text == TRANSFER_NUMBER
    conversation = VoiceCall.objects.select_related("conversation").get(call_sid=call_sid).conversation
    assert conversation is not None and conversation.status == ConversationStatus.QUEUED
    # The model was not asked to go on speaking: the call is a person's now.
    assert not any(event["type"] == "response.create" for event in rig.realtime.connections[0].received)


@pytest.mark.django_db
def test_a_realtime_tool_call_delivered_again_is_not_run_twice():
    received = inbox.receive("voice", "+34600111333", "Hola, soy Ana", locale="es", assistant_turn=False)
    conversation_id = str(received.conversation.pk)
    streaming.run_tool(conversation_id, "record_consent", '{"granted": true}', "call_1")
    arguments, output = streaming.run_tool(conversation_id, "set_full_name", '{"full_name": "Ana García"}', "call_2")
    streaming.record_tool_call(conversation_id, "call_2", "set_full_name", arguments, output)

    again = streaming.run_tool(conversation_id, "set_full_name", '{"full_name": "Otra Persona"}', "call_2")

    assert again == ({"full_name": "Ana García"}, output) and output["ok"] is True
    received.contact.refresh_from_db()
    assert received.contact.full_name == "Ana García"
    [stored] = ToolCall.objects.filter(call_id="call_2")
    assert (stored.run.trigger_message_id, stored.run.engine) == (received.message.pk, "realtime")


@pytest.mark.django_db(transaction=True)
def test_a_caller_who_switches_to_english_falls_back_to_speech_turns_in_english(rig: Rig, voices: dict[str, bytes]):
    # A Spanish number: greeted in Spanish.
    call_sid, _ = drop_twice(
        rig,
        voices,
        "Hi, my name is Ana and I would like to book a cleaning for my son.",
        "What are the opening hours on Saturday?",
    )

    assert VoiceCall.objects.get(call_sid=call_sid).locale == "en"
    [update] = rig.twilio.call_updates
    root = ET.fromstring(update["Twiml"])  # noqa: S314 (what TalIA sent Twilio, in a test)
    assert child(root, "Gather").get("language") == "en-US"
    assert child(root, "Say").get("language") == "en-US"
