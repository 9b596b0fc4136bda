"""Voice test wiring: a caller whose webhooks are posted and signed the way Twilio posts them, and who
follows TalIA's TwiML (Gather actions, Redirects) as Twilio's call engine would."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils.http import urlencode
from twilio.request_validator import RequestValidator

from channels_voice.models import VoiceCall
from conversations.console.permissions import AGENTS_GROUP_NAME
from conversations.models import Conversation

INBOUND = "/api/voice/inbound"
GATHER = "/api/voice/gather"
STATUS = "/api/voice/status"
AUTH_TOKEN = "voice-test-auth-token-" + "0" * 10
ACCOUNT_SID = "AC" + "1" * 32


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def parse(response: Any) -> ET.Element:
    """The TwiML of a response, parsed back (and checked to be TwiML)."""
    assert response.status_code == 200, response.content[:2000]
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)  # noqa: S314 (TalIA's own answer, in a test)
    assert root.tag == "Response"
    return root


def child(root: ET.Element, tag: str) -> ET.Element:
    """The first `tag` element of the TwiML, which must be there."""
    found = root.find(tag)
    assert found is not None, f"no <{tag}> in {ET.tostring(root, encoding='unicode')}"
    return found


def conversation_of(call_sid: str) -> Conversation:
    """The conversation of a call, which must have one."""
    conversation = VoiceCall.objects.select_related("conversation__contact").get(call_sid=call_sid).conversation
    assert conversation is not None
    return conversation


def says(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter("Say")]


@dataclass
class Heard:
    """What TalIA answered one turn with, after following its Redirects."""

    said: list[str]
    last: ET.Element  # the TwiML that ended the turn (a Gather to answer, or a Hangup / Dial)
    redirects: int = 0

    @property
    def gather(self) -> ET.Element | None:
        return self.last.find("Gather")

    def listening_in(self) -> str:
        """The language of the Gather that ended the turn."""
        return child(self.last, "Gather").get("language", "")

    @property
    def hung_up(self) -> bool:
        return self.last.find("Hangup") is not None


@dataclass
class Caller:
    """One phone call: posts Twilio's signed webhooks and follows the TwiML TalIA answers."""

    client: Client
    number: str = "+34600123456"
    to: str = "+34910000000"
    call_sid: str = field(default_factory=new_call_sid)
    base: str = "http://testserver"
    action: str = ""

    def params(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": self.number,
            "To": self.to,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **extra,
        }

    def post(
        self, path: str, params: dict[str, str], *, signature: str | None = None, sign_url: str | None = None
    ) -> Any:
        url = sign_url or f"{self.base}{path}"
        headers = {} if signature == "" else {"X-Twilio-Signature": signature or sign(url, params)}
        return self.client.post(
            path, urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers
        )

    def dial(self, **extra: str) -> ET.Element:
        root = parse(self.post(INBOUND, self.params(CallStatus="ringing", **extra)))
        self._listen(root)
        return root

    def _listen(self, root: ET.Element) -> None:
        gather = root.find("Gather")
        self.action = gather.get("action", "") if gather is not None else ""

    def speak(self, speech: str, *, max_redirects: int = 5) -> Heard:
        """Say `speech` (empty: silence) to the current Gather; follow Redirects like Twilio."""
        assert self.action, "TalIA is not listening (no Gather in its last answer)"
        extra = {"SpeechResult": speech, "Confidence": "0.91"} if speech else {}
        root = parse(self.post(self.action, self.params(CallStatus="in-progress", **extra)))
        said = says(root)
        redirects = 0
        while (redirect := root.find("Redirect")) is not None:
            assert redirects < max_redirects, "TalIA kept redirecting"
            redirects += 1
            root = parse(self.post(redirect.text or "", self.params(CallStatus="in-progress")))
            said += says(root)
        self._listen(root)
        return Heard(said, root, redirects)

    def status(self, status: str, sequence: int | None, **extra: str) -> Any:
        params = self.params(CallStatus=status, CallbackSource="call-progress-events", **extra)
        if sequence is not None:
            params["SequenceNumber"] = str(sequence)
        return self.post(STATUS, params)


def sign(url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send (the SDK's own computation, with the account's token)."""
    return str(RequestValidator(AUTH_TOKEN).compute_signature(url, params))


@pytest.fixture(autouse=True)
def twilio_settings(settings: Any) -> None:
    settings.TALIA_TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TALIA_TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TALIA_TWILIO_VALIDATE_SIGNATURES = True
    settings.TALIA_PUBLIC_BASE_URL = ""
    settings.TALIA_VOICE_TRANSFER_NUMBER = ""
    settings.TALIA_VOICE_DISCLOSURE_ES = ""
    settings.TALIA_VOICE_DISCLOSURE_EN = ""
    settings.TALIA_VOICE_RECORD = False
    settings.TALIA_RECORDING_KEY = ""
    settings.TALIA_VOICE_DELETE_REMOTE = False


@pytest.fixture
def caller(client: Client) -> Caller:
    return Caller(client)


@pytest.fixture
def agent(db: None, django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("ana", first_name="Ana")  # no password: no slow hashing
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP_NAME)[0])
    return user
