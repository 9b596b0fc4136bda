"""A TalIA webhook receiver with Standard Webhooks signature verification, standard library only.

    TALIA_WEBHOOK_SECRET=whsec_... python docs/examples/webhook_receiver.py 8080

Verifies `webhook-signature` (HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" keyed with the
base64-decoded part of the secret after `whsec_`), refuses timestamps more than 5 minutes away, skips
ids it has already seen (deliveries are at least once), prints each event and answers 204.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = base64.b64decode(os.environ["TALIA_WEBHOOK_SECRET"].removeprefix("whsec_"))
TOLERANCE_S = 300
seen: set[str] = set()  # use your database in production


def verified(headers: dict[str, str], body: bytes) -> bool:
    message_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not message_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return False
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(SECRET, signed, hashlib.sha256).digest()).decode()
    for candidate in headers.get("webhook-signature", "").split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {key.lower(): value for key, value in self.headers.items()}
        if not verified(headers, body):
            self.send_response(401)
            self.end_headers()
            return
        if headers["webhook-id"] not in seen:
            seen.add(headers["webhook-id"])
            event = json.loads(body)
            print(event["id"], event["type"], event["conversation_id"], event["data"], flush=True)
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Receiver).serve_forever()
