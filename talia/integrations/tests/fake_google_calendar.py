"""A small fake of the Google Calendar v3 REST API and Google's OAuth token endpoint, on a local port.

It speaks what TalIA uses: events insert/update/patch/get/list/delete under /calendar/v3/, and POST /token
for the service-account JWT grant (the assertion's RS256 signature is checked against the key's public half)
and the refresh-token grant. API calls need a bearer token it issued. Client-chosen event ids must be
base32hex; an id in use answers 409, as Google does, even once the event was deleted (status "cancelled").
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

EVENT_ID = re.compile(r"^[0-9a-v]{5,1024}$")
EVENTS_PATH = re.compile(r"^/calendar/v3/calendars/([^/]+)/events(?:/([^/]+))?$")


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class FakeGoogleCalendar:
    def __init__(self, public_key: rsa.RSAPublicKey | None = None) -> None:
        self.public_key = public_key
        self.calendars: dict[str, dict[str, Any]] = {}  # calendar id -> {"summary", "events": {id: event}}
        self.requests: list[tuple[str, str]] = []  # (method, path) of API calls
        self.assertions: list[dict[str, Any]] = []  # verified JWT claims
        self.refresh_tokens: list[str] = []
        self.tokens: set[str] = set()
        self.forbidden: set[str] = set()  # calendar ids the caller may not write
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_calendar(self, calendar_id: str, summary: str) -> None:
        self.calendars[calendar_id] = {"summary": summary, "events": {}}

    def events(self, calendar_id: str) -> dict[str, dict[str, Any]]:
        return self.calendars[calendar_id]["events"]

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.requests if m == method)

    def __enter__(self) -> FakeGoogleCalendar:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the wire ----------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, reason: str) -> None:
                self._send(
                    status,
                    {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}},
                )

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:
                if urlsplit(self.path).path == "/token":
                    self._token(parse_qs(self._body().decode()))
                else:
                    self._api("POST")

            def do_GET(self) -> None:
                self._api("GET")

            def do_PUT(self) -> None:
                self._api("PUT")

            def do_PATCH(self) -> None:
                self._api("PATCH")

            def do_DELETE(self) -> None:
                self._api("DELETE")

            def _token(self, form: dict[str, list[str]]) -> None:
                grant = form.get("grant_type", [""])[0]
                if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                    claims = fake._verify(form.get("assertion", [""])[0])
                    if claims is None:
                        self._send(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                        return
                    fake.assertions.append(claims)
                elif grant == "refresh_token":
                    fake.refresh_tokens.append(form.get("refresh_token", [""])[0])
                else:
                    self._send(400, {"error": "unsupported_grant_type"})
                    return
                token = f"ya29.fake-{len(fake.tokens) + 1}"
                fake.tokens.add(token)
                self._send(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

            def _api(self, method: str) -> None:
                parts = urlsplit(self.path)
                fake.requests.append((method, unquote(parts.path)))
                authorization = self.headers.get("Authorization", "")
                if authorization.removeprefix("Bearer ") not in fake.tokens:
                    self._error(401, "Request had invalid authentication credentials.", "authError")
                    return
                match = EVENTS_PATH.match(parts.path)
                if match is None:
                    self._error(404, "Not Found", "notFound")
                    return
                calendar_id, event_id = unquote(match.group(1)), match.group(2) and unquote(match.group(2))
                if calendar_id not in fake.calendars:
                    self._error(404, "Not Found", "notFound")
                    return
                if calendar_id in fake.forbidden and method != "GET":
                    self._error(403, "You need to have writer access to this calendar.", "requiredAccessLevel")
                    return
                body = json.loads(self._body() or b"{}") if method in ("POST", "PUT", "PATCH") else {}
                with fake.lock:
                    self._events(method, calendar_id, event_id, body)

            def _events(self, method: str, calendar_id: str, event_id: str | None, body: dict[str, Any]) -> None:
                calendar = fake.calendars[calendar_id]
                events = calendar["events"]
                if event_id is None and method == "GET":
                    items = [e for e in events.values() if e["status"] != "cancelled"]
                    self._send(200, {"kind": "calendar#events", "summary": calendar["summary"], "items": items})
                    return
                if event_id is None and method == "POST":
                    new_id = body.get("id", "")
                    if not EVENT_ID.match(new_id):
                        self._error(400, "Invalid resource id value.", "invalid")
                        return
                    if new_id in events:
                        self._error(409, "The requested identifier already exists.", "duplicate")
                        return
                    events[new_id] = fake._stored(calendar_id, new_id, body, sequence=0)
                    self._send(200, events[new_id])
                    return
                event = events.get(event_id or "")
                if event is None:
                    self._error(404, "Not Found", "notFound")
                elif method == "GET":
                    self._send(200, event)
                elif method == "DELETE":
                    if event["status"] == "cancelled":
                        self._error(410, "Resource has been deleted", "deleted")
                    else:
                        event["status"] = "cancelled"
                        self._send(204)
                elif method in ("PUT", "PATCH"):
                    merged = {**event, **body} if method == "PATCH" else body
                    events[event["id"]] = fake._stored(calendar_id, event["id"], merged, event["sequence"] + 1)
                    self._send(200, events[event["id"]])
                else:
                    self._error(405, "Method not allowed", "badRequest")

        return Handler

    def _stored(self, calendar_id: str, event_id: str, body: dict[str, Any], sequence: int) -> dict[str, Any]:
        return {
            **{k: v for k, v in body.items() if k not in ("etag", "htmlLink", "sequence")},
            "kind": "calendar#event",
            "id": event_id,
            "status": body.get("status", "confirmed"),
            "sequence": sequence,
            "etag": f'"{event_id}-{sequence}"',
            "htmlLink": f"https://calendar.example/event?eid={event_id}",
            "organizer": {"email": calendar_id},
        }

    def _verify(self, assertion: str) -> dict[str, Any] | None:
        """The JWT's claims when its RS256 signature is the service account key's, else None."""
        try:
            header, payload, signature = assertion.split(".")
            assert json.loads(_b64(header))["alg"] == "RS256"
            assert self.public_key is not None
            self.public_key.verify(_b64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
            return dict(json.loads(_b64(payload)))
        except Exception:  # noqa: BLE001 - any malformed or forged assertion is refused
            return None
