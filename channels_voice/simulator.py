"""A simulated caller: plays a phone call against TalIA's own Voice webhooks as Twilio's call engine would.

Used by the dev phone's call tab (channels_voice.devphone) and `manage.py simulate_call`. Every request
is a form-encoded POST signed with X-Twilio-Signature by the twilio SDK's `RequestValidator`, over the
URL TalIA will check (its public base URL plus the path): the inbound call, each `SpeechResult` posted to
the `<Gather>` action TalIA's last TwiML named, each `<Redirect>` followed (to /api/voice/wait), and the
final `completed` status callback.

Invariants:
- Only paths TalIA itself named are posted to, and only its own Voice webhooks (`/api/voice/...`): an
  action or redirect elsewhere ends the turn as an error instead of being followed.
- A turn follows at most MAX_REDIRECTS redirects (TalIA gives up holding after three).
- A call's state (`CallState`) is plain JSON, so the dev phone can keep it in the session between requests.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.test import Client
from twilio.request_validator import RequestValidator

VOICE_PATHS = "/api/voice/"
INBOUND = "/api/voice/inbound"
STATUS = "/api/voice/status"
MAX_REDIRECTS = 5
DEFAULT_NUMBER = "+34600000002"
DEFAULT_TO = "+34910000000"
FORM = "application/x-www-form-urlencoded"


class Transport(Protocol):
    """Posts a signed webhook to TalIA; `url(path)` is the URL TalIA checks the signature over."""

    def url(self, path: str) -> str: ...

    def post(self, path: str, params: dict[str, str], signature: str) -> tuple[int, str]: ...


@dataclass(frozen=True)
class HttpTransport:
    """Over HTTP to a running TalIA at `base` (no trailing slash), or to `public_base` behind a proxy."""

    base: str
    public_base: str = ""
    timeout_s: float = 20.0  # above Twilio's 15 s budget per request, which TalIA keeps to

    def url(self, path: str) -> str:
        return f"{self.public_base or self.base}{path}"

    def post(self, path: str, params: dict[str, str], signature: str) -> tuple[int, str]:
        headers = {"X-Twilio-Signature": signature} if signature else {}
        answer = requests.post(f"{self.base}{path}", data=params, headers=headers, timeout=self.timeout_s)
        return answer.status_code, answer.text


@dataclass
class ClientTransport:
    """In this process, through Django's test Client: TalIA's URLconf and views, on the configured
    database and Redis (the assistant's turns still run in a Celery worker)."""

    host: str = "localhost"
    public_base: str = ""
    client: Client = field(default_factory=Client)

    def url(self, path: str) -> str:
        return f"{self.public_base or 'http://' + self.host}{path}"

    def post(self, path: str, params: dict[str, str], signature: str) -> tuple[int, str]:
        headers = {"X-Twilio-Signature": signature} if signature else {}
        answer = self.client.post(path, urlencode(params), content_type=FORM, headers=headers, SERVER_NAME=self.host)
        return answer.status_code, answer.content.decode("utf-8", "replace")


@dataclass(frozen=True)
class Spoken:
    """One `<Say>`: its text and the language it is said in (es-MX, en-US)."""

    text: str
    language: str


@dataclass
class Turn:
    """What TalIA answered one request with, its Redirects followed."""

    status: int
    # Each TwiML document (or error body) TalIA answered, in order.
    answers: list[str] = field(default_factory=list)
    said: list[Spoken] = field(default_factory=list)
    # The Gather action TalIA listens on now; "" when it is not listening (hung up, transferred, error).
    action: str = ""
    hung_up: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "twiml": self.answers,
            "said": [asdict(spoken) for spoken in self.said],
            "listening": bool(self.action),
            "hung_up": self.hung_up,
            "error": self.error,
        }


@dataclass
class CallState:
    call_sid: str
    number: str
    to: str
    started: float  # time.time() when dialled
    action: str = ""
    # The SequenceNumber of the next status callback (Twilio's count from 0).
    sequence: int = 0
    ended: bool = False

    @classmethod
    def new(cls, number: str = DEFAULT_NUMBER, to: str = DEFAULT_TO) -> CallState:
        return cls("CA" + secrets.token_hex(16), number, to, time.time())


def sign(token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send; "" without a token (only for TalIA with checks off)."""
    return str(RequestValidator(token).compute_signature(url, params)) if token else ""


def parse(body: str) -> ET.Element:
    """TalIA's TwiML (TalIA's own answer to a webhook this module posted)."""
    root = ET.fromstring(body)  # noqa: S314 (the answer of the TalIA this call was placed on)
    if root.tag != "Response":
        raise ValueError(f"not TwiML: <{root.tag}>")
    return root


class Call:
    """One simulated call: `dial()`, then `say(text)` while `listening`, then `hang_up()`."""

    def __init__(self, transport: Transport, token: str, state: CallState | None = None) -> None:
        self.transport = transport
        self.token = token
        self.state = state or CallState.new()

    @property
    def listening(self) -> bool:
        return bool(self.state.action) and not self.state.ended

    def params(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.state.call_sid,
            "AccountSid": settings.TALIA_TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
            "From": self.state.number,
            "To": self.state.to,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **extra,
        }

    def _post(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        return self.transport.post(path, params, sign(self.token, self.transport.url(path), params))

    def dial(self) -> Turn:
        """The inbound call: TalIA's greeting (the AI disclosure) and its first Gather."""
        return self._turn(INBOUND, self.params(CallStatus="ringing"))

    def say(self, text: str) -> Turn:
        """What the caller says, posted as SpeechResult to the Gather action of TalIA's last answer."""
        if not self.listening:
            return Turn(status=0, error="TalIA is not listening: the call has ended or never started.")
        params = self.params(CallStatus="in-progress", SpeechResult=text, Confidence="0.9")
        return self._turn(self.state.action, params)

    def _turn(self, path: str, params: dict[str, str]) -> Turn:
        turn = Turn(status=0)
        for _redirect in range(MAX_REDIRECTS + 1):
            if not path.startswith(VOICE_PATHS):
                turn.error = f"TalIA's TwiML points outside its Voice webhooks: {path!r}"
                break
            turn.status, body = self._post(path, params)
            turn.answers.append(body)
            if turn.status != 200:
                turn.error = f"HTTP {turn.status} from {path}"
                break
            try:
                root = parse(body)
            except (ET.ParseError, ValueError) as exc:
                turn.error = f"{path} did not answer TwiML: {exc}"
                break
            turn.said += [Spoken((say.text or "").strip(), say.get("language", "")) for say in root.iter("Say")]
            redirect = root.find("Redirect")
            if redirect is None:
                gather = root.find("Gather")
                turn.action = gather.get("action", "") if gather is not None else ""
                turn.hung_up = root.find("Hangup") is not None
                break
            path = (redirect.text or "").strip()
            params = self.params(CallStatus="in-progress")
        else:
            turn.error = f"TalIA redirected more than {MAX_REDIRECTS} times"
        self.state.action = turn.action
        return turn

    def hang_up(self) -> tuple[int, str]:
        """The `completed` status callback, with the call's duration so far; the call is over."""
        duration = max(0, round(time.time() - self.state.started))
        params = self.params(
            CallStatus="completed",
            CallDuration=str(duration),
            SequenceNumber=str(self.state.sequence),
            CallbackSource="call-progress-events",
        )
        self.state.sequence += 1
        self.state.ended = True
        self.state.action = ""
        return self._post(STATUS, params)
