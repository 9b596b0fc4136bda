"""A fake Twilio REST API on a real local socket, for the tests and the dev phone.

    with FakeTwilio() as fake:                      # or the `fake_twilio` fixture of channels_whatsapp's tests
        settings.TALIA_TWILIO_API_BASE = fake.base_url
        ...                                         # the real twilio SDK sends messages to it
        fake.sent                                   # what was sent (form fields, as Twilio got them)

It speaks the parts of Twilio's API TalIA uses, with Twilio's shapes:
- POST /2010-04-01/Accounts/{AccountSid}/Messages.json (form: To, From or MessagingServiceSid, Body or
  ContentSid + ContentVariables, StatusCallback) -> 201 and the message resource with a fresh SM sid;
  Basic auth with the account SID and Auth Token (or an API key it was told about), else 401.
- GET /2010-04-01/Accounts/{AccountSid}/Messages/{MM}/Media/{ME}: a media file added with `add_media()`.
- GET /2010-04-01/Accounts/{AccountSid}/Recordings/{RE}[.wav]: a call recording added with
  `add_recording()` (404 once deleted); DELETE .../Recordings/{RE}.json -> 204 (404 when unknown), and
  `recordings_deleted` lists what was deleted. `fail_next` also fails the next recording download.
- `fail_next(count, status=..., code=...)`: the next `count` sends answer Twilio's error JSON
  (429, 500, 400 with 21211, 63016...); `slow_next(count, seconds=...)` makes them slow (a timeout).
  Every request is recorded (`requests`).
- `callbacks=True`: after each send, signed status callbacks (sent, then delivered) are posted to the
  message's StatusCallback from a thread, as Twilio does; `post_status()` posts one on demand.
- POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json (form: Twiml, or Url, or Status) -> 200
  and the call resource, as `client.calls(sid).update(twiml=...)` expects; recorded in `call_updates`.
  TwiML over 4000 characters is refused with Twilio's 400 (code 21220, as Twilio limits `Twiml`).
- `sign(url, params)`: the X-Twilio-Signature Twilio would send, for the webhooks tests post to TalIA.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twilio.request_validator import RequestValidator

TWILIO_API = "https://api.twilio.com"
ERROR_MESSAGES = {
    21211: "The 'To' number is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    63016: "Failed to send freeform message because you are outside the allowed window. Please use a Template.",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
}


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    auth: tuple[str, str] | None


@dataclass
class _Failure:
    status: int
    code: int
    delay_s: float = 0.0


@dataclass
class _Media:
    content: bytes
    content_type: str


@dataclass
class _State:
    requests: list[Recorded] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    media: dict[str, _Media] = field(default_factory=dict)
    recordings: dict[str, _Media] = field(default_factory=dict)
    recordings_deleted: list[str] = field(default_factory=list)
    callback_errors: list[str] = field(default_factory=list)
    call_updates: list[dict[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.fake.serve(self, "GET")

    def do_POST(self) -> None:
        self.server.fake.serve(self, "POST")

    def do_DELETE(self) -> None:
        self.server.fake.serve(self, "DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeTwilio) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class FakeTwilio:
    def __init__(self, *, callbacks: bool = False, account_sid: str = "", auth_token: str = "") -> None:
        self.account_sid = account_sid or sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.api_keys: dict[str, str] = {}
        self.callbacks = callbacks
        self.state = _State()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # --- Lifecycle ---

    def start(self) -> FakeTwilio:
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, name="fake-twilio", daemon=True).start()
        return self

    def stop(self) -> None:
        for thread in self._threads:
            thread.join(timeout=10)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- What tests script and read ---

    def add_api_key(self) -> tuple[str, str]:
        key, secret = sid("SK"), secrets.token_hex(16)
        self.api_keys[key] = secret
        return key, secret

    def fail_next(self, count: int = 1, *, status: int = 500, code: int | None = None) -> None:
        """The next `count` sends answer `status` with Twilio's error JSON (code 20429/20500 by default)."""
        with self._lock:
            for _ in range(count):
                self.state.failures.append(_Failure(status, code or (20429 if status == 429 else 20000 + status)))

    def slow_next(self, count: int = 1, *, seconds: float) -> None:
        """The next `count` sends answer only after `seconds` (then succeed): a client timeout's test."""
        with self._lock:
            for _ in range(count):
                self.state.failures.append(_Failure(201, 0, seconds))

    def add_media(self, content: bytes, content_type: str) -> str:
        """A media file of an inbound message; returns its URL as Twilio gives it (https://api.twilio.com/...)."""
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid('MM')}/Media/{sid('ME')}"
        with self._lock:
            self.state.media[path] = _Media(content, content_type)
        return TWILIO_API + path

    def add_recording(self, content: bytes, content_type: str = "audio/x-wav") -> tuple[str, str]:
        """A call recording Twilio holds: (RecordingSid, RecordingUrl as Twilio's callback gives it)."""
        recording_sid = sid("RE")
        with self._lock:
            self.state.recordings[recording_sid] = _Media(content, content_type)
        return recording_sid, f"{TWILIO_API}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    def has_recording(self, recording_sid: str) -> bool:
        with self._lock:
            return recording_sid in self.state.recordings

    @property
    def recordings_deleted(self) -> list[str]:
        with self._lock:
            return list(self.state.recordings_deleted)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """The messages created, oldest first: the form fields as posted, plus `sid`."""
        with self._lock:
            return list(self.state.sent)

    @property
    def call_updates(self) -> list[dict[str, str]]:
        """The live-call updates received, oldest first: the form fields as posted, plus `sid`."""
        with self._lock:
            return list(self.state.call_updates)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self.state.requests)

    def sign(self, url: str, params: dict[str, str]) -> str:
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    def post_status(self, message: dict[str, Any], status: str, error_code: int | None = None) -> int:
        """Post a signed status callback for a sent message to its StatusCallback; returns the HTTP status."""
        url = message.get("StatusCallback")
        if not url:
            raise ValueError("The message was sent without a StatusCallback.")
        params = {
            "MessageSid": message["sid"],
            "SmsSid": message["sid"],
            "AccountSid": self.account_sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": message.get("To", ""),
            "From": message.get("From", ""),
            "ApiVersion": "2010-04-01",
            "ChannelPrefix": "whatsapp",
        }
        if error_code:
            params["ErrorCode"] = str(error_code)
        request = urllib.request.Request(  # noqa: S310 (a URL the code under test gave)
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={
                "X-Twilio-Signature": self.sign(url, params),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    # --- Serving ---

    def serve(self, handler: _Handler, method: str) -> None:
        path = urllib.parse.urlsplit(handler.path).path
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
        auth = _basic_auth(handler.headers.get("Authorization", ""))
        with self._lock:
            self.state.requests.append(Recorded(method, path, form, auth))
        if not self._authorised(auth):
            return self._json(handler, 401, _error(20003, "Authenticate", 401))
        messages_path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if method == "POST" and path == messages_path:
            return self._create(handler, form)
        if method == "GET" and path == messages_path:
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(handler.path).query))
            return self._json(handler, 200, self._list(query.get("To")))
        recordings_prefix = f"/2010-04-01/Accounts/{self.account_sid}/Recordings/"
        if path.startswith(recordings_prefix):
            return self._recording(handler, method, path[len(recordings_prefix) :])
        call = re.fullmatch(rf"/2010-04-01/Accounts/{self.account_sid}/Calls/(CA[0-9a-f]{{32}})\.json", path)
        if method == "POST" and call is not None:
            return self._update_call(handler, call.group(1), form)
        if method == "GET" and path in self.state.media:
            media = self.state.media[path]
            handler.send_response(200)
            handler.send_header("Content-Type", media.content_type)
            handler.send_header("Content-Length", str(len(media.content)))
            handler.end_headers()
            handler.wfile.write(media.content)
            return None
        return self._json(handler, 404, _error(20404, f"The requested resource {path} was not found", 404))

    def _recording(self, handler: _Handler, method: str, name: str) -> None:
        """A recording's audio (GET RE..., RE....wav) or its deletion (DELETE RE....json)."""
        recording_sid, _, extension = name.partition(".")
        with self._lock:
            recording = self.state.recordings.get(recording_sid)
            failure = self.state.failures.pop(0) if method == "GET" and self.state.failures else None
            if method == "DELETE" and extension == "json" and recording is not None:
                del self.state.recordings[recording_sid]
                self.state.recordings_deleted.append(recording_sid)
        if recording is None or (method, extension) not in {("GET", ""), ("GET", "wav"), ("DELETE", "json")}:
            return self._json(handler, 404, _error(20404, f"The requested resource {handler.path} was not found", 404))
        if failure is not None and failure.delay_s:
            time.sleep(failure.delay_s)
        elif failure is not None:
            return self._json(handler, failure.status, _error(failure.code, "Error", failure.status))
        if method == "DELETE":
            handler.send_response(204)
            handler.end_headers()
            return None
        handler.send_response(200)
        handler.send_header("Content-Type", recording.content_type)
        handler.send_header("Content-Length", str(len(recording.content)))
        handler.end_headers()
        handler.wfile.write(recording.content)
        return None

    def _authorised(self, auth: tuple[str, str] | None) -> bool:
        if auth is None:
            return False
        user, password = auth
        return (user == self.account_sid and password == self.auth_token) or self.api_keys.get(user) == password

    def _create(self, handler: _Handler, form: dict[str, str]) -> None:
        with self._lock:
            failure = self.state.failures.pop(0) if self.state.failures else None
        if failure is not None and failure.delay_s:
            time.sleep(failure.delay_s)
            failure = None
        if failure is not None:
            message = ERROR_MESSAGES.get(failure.code, "Error")
            return self._json(handler, failure.status, _error(failure.code, message, failure.status))
        if not form.get("To"):
            return self._json(handler, 400, _error(21604, "A 'To' phone number is required.", 400))
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return self._json(handler, 400, _error(21603, "A 'From' phone number is required.", 400))
        if not (form.get("Body") or form.get("ContentSid") or form.get("MediaUrl")):
            return self._json(handler, 400, _error(21602, "Message body is required.", 400))
        message_sid = sid("SM")
        now = format_datetime(datetime.now(UTC))
        with self._lock:
            record = {**form, "sid": message_sid, "status": "queued", "date_created": now}
            self.state.sent.append(record)
        body: dict[str, Any] = {
            "sid": message_sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body", ""),
            "status": "queued",
            "num_segments": "1",
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}.json",
            "subresource_uris": {},
        }
        self._json(handler, 201, body)
        if self.callbacks and form.get("StatusCallback"):
            thread = threading.Thread(target=self._report, args=(record,), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()]  # `make run` sends for hours
            self._threads.append(thread)
            thread.start()
        return None

    def _update_call(self, handler: _Handler, call_sid: str, form: dict[str, str]) -> None:
        if not (form.get("Twiml") or form.get("Url") or form.get("Status")):
            return self._json(handler, 400, _error(21218, "One of Twiml, Url or Status is required.", 400))
        if len(form.get("Twiml", "")) > 4000:
            return self._json(handler, 400, _error(21220, "Twiml is longer than 4000 characters.", 400))
        with self._lock:
            self.state.call_updates.append({**form, "sid": call_sid})
        now = format_datetime(datetime.now(UTC))
        body = {
            "sid": call_sid,
            "account_sid": self.account_sid,
            "status": form.get("Status") or "in-progress",
            "direction": "inbound",
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call_sid}.json",
            "subresource_uris": {},
        }
        return self._json(handler, 200, body)

    def _list(self, to: str | None) -> dict[str, Any]:
        """Twilio's message list (newest first), as `client.messages.list(to=...)` reads it."""
        with self._lock:
            chosen = [m for m in reversed(self.state.sent) if to is None or m.get("To") == to][:50]
        messages = [
            {
                "sid": m["sid"],
                "account_sid": self.account_sid,
                "to": m.get("To"),
                "from": m.get("From"),
                "body": m.get("Body") or m.get("ContentVariables", ""),
                "status": m["status"],
                "direction": "outbound-api",
                "date_created": m["date_created"],
                "date_updated": m["date_created"],
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{m['sid']}.json",
            }
            for m in chosen
        ]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return {"messages": messages, "page": 0, "page_size": 50, "uri": uri, "first_page_uri": uri,
                "next_page_uri": None, "previous_page_uri": None}  # fmt: skip

    def _report(self, record: dict[str, Any]) -> None:
        for status in ("sent", "delivered"):
            with self._lock:
                record["status"] = status
            try:
                answer = self.post_status(record, status)
            except OSError as exc:
                answer = 0
                self.state.callback_errors.append(f"{status}: {exc}")
            if answer != 200:
                self.state.callback_errors.append(f"{status}: HTTP {answer}")

    @staticmethod
    def _json(handler: _Handler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return user, password
