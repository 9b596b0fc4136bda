"""docs/examples/webhook_receiver.py, run as the docs say, verifies TalIA's real deliveries and refuses
a tampered one."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys

import pytest

from talia.env import BASE_DIR
from talia.integrations import publisher
from talia.integrations.models import EventDelivery, WebhookEndpoint
from talia.integrations.tests.helpers import visitor_says
from talia.integrations.webhooks import signed_headers
from talia.testing.browser import free_port
from talia.testing.plugin import wait_for

pytestmark = pytest.mark.django_db


def test_the_documented_receiver_verifies_deliveries(no_stream):
    port = free_port()
    endpoint = WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{port}/")
    process = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "docs" / "examples" / "webhook_receiver.py"), str(port)],
        env={"TALIA_WEBHOOK_SECRET": endpoint.secret, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def listening() -> bool:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            except OSError:
                return False
            return True

        wait_for(listening, timeout=30)
        visitor_says("session-docs-receiver-0001")
        publisher.run_pass()
        assert set(EventDelivery.objects.values_list("status", "last_status_code")) == {("delivered", 204)}

        body = b'{"id": 1}'
        headers = signed_headers(endpoint.secret, "1", body)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("POST", "/", body=b'{"id": 2}', headers=headers)
        assert connection.getresponse().status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    assert "conversation_opened" in output and "message_received" in output
