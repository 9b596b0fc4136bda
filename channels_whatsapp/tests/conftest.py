"""WhatsApp test wiring: the fake Twilio at the wire, and webhooks posted the way Twilio posts them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils.http import urlencode

from conversations.console.permissions import AGENTS_GROUP_NAME
from talia.testing.fake_twilio import FakeTwilio

FIXTURES = Path(__file__).parent / "fixtures"
WEBHOOK = "/api/v1/whatsapp/webhook"
STATUS = "/api/v1/whatsapp/status"


def payload(name: str, **changes: str | None) -> dict[str, str]:
    """A stored Twilio payload (fixtures/<name>.json), with a fresh MessageSid unless given, and changes."""
    data: dict[str, str] = json.loads((FIXTURES / f"{name}.json").read_text())
    fresh = data["MessageSid"][:2] + secrets.token_hex(16)
    data.update(MessageSid=fresh, SmsMessageSid=fresh, SmsSid=fresh)
    merged: dict[str, str | None] = {**data, **changes}
    return {key: value for key, value in merged.items() if value is not None}


def text(body: str, wa_id: str = "34600123456", **changes: str) -> dict[str, str]:
    return payload("text", Body=body, WaId=wa_id, From=f"whatsapp:+{wa_id}", **changes)


class Twilio:
    """Posts webhooks to TalIA as Twilio does: form-encoded, signed over the URL it calls."""

    def __init__(self, client: Client, fake: FakeTwilio, base: str = "http://testserver") -> None:
        self.client = client
        self.fake = fake
        self.base = base

    def post(
        self,
        path: str,
        params: dict[str, str],
        *,
        signature: str | None = None,
        sign_url: str | None = None,
        **extra: Any,
    ) -> Any:
        url = sign_url or f"{self.base}{path}"
        headers = {} if signature == "" else {"X-Twilio-Signature": signature or self.fake.sign(url, params)}
        return self.client.post(
            path, urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers, **extra
        )

    def message(self, params: dict[str, str], **kwargs: Any) -> Any:
        return self.post(WEBHOOK, params, **kwargs)

    def status(self, sid: str, status: str, error_code: str | None = None, **kwargs: Any) -> Any:
        params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "AccountSid": self.fake.account_sid}
        if error_code:
            params["ErrorCode"] = error_code
        return self.post(STATUS, params, **kwargs)


@pytest.fixture
def fake_twilio(settings: Any) -> Iterator[FakeTwilio]:
    """A started FakeTwilio with TalIA's Twilio settings pointed at it (sender +14155238886)."""
    with FakeTwilio() as fake:
        settings.TALIA_TWILIO_API_BASE = fake.base_url
        settings.TALIA_TWILIO_ACCOUNT_SID = fake.account_sid
        settings.TALIA_TWILIO_AUTH_TOKEN = fake.auth_token
        settings.TALIA_TWILIO_API_KEY_SID = ""
        settings.TALIA_TWILIO_API_KEY_SECRET = ""
        settings.TALIA_TWILIO_WHATSAPP_FROM = "whatsapp:+14155238886"
        settings.TALIA_TWILIO_MESSAGING_SERVICE_SID = ""
        yield fake


@pytest.fixture
def agent(db: None, django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("ana", first_name="Ana")  # no password: no slow hashing
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP_NAME)[0])
    return user


@pytest.fixture
def twilio(fake_twilio: FakeTwilio, client: Client) -> Twilio:
    return Twilio(client, fake_twilio)
