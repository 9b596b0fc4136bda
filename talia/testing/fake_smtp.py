"""A real SMTP server on localhost (aiosmtpd) that keeps what it receives, for Django's SMTP backend.

    def test_x(smtp_server, settings):   # settings point Django's SMTP backend at it
        ...
        mail = smtp_server.wait_for(lambda m: "ana@example.com" in m.recipients)

Addresses in `refuse` are answered 550 at RCPT TO, as a mail server refuses an unknown mailbox.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from talia.testing.plugin import wait_for


@dataclass(frozen=True)
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, content_type: str) -> str:
        """The decoded body of the first part of `content_type` (text/plain, text/html), with \n line ends."""
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return str(part.get_content()).replace("\r\n", "\n")
        raise AssertionError(f"No {content_type} part in {self.message['Subject']!r}")


class FakeSMTP:
    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self.refuse: set[str] = set()
        self._lock = threading.Lock()
        with socket.socket() as probe:  # a free port (aiosmtpd checks readiness by connecting to it)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def stop(self) -> None:
        """Stop listening (idempotent): the port then refuses connections, as a mail server that is down."""
        if self.controller.loop.is_running():
            self.controller.stop()

    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.received)

    def wait_for(self, predicate: Callable[[ReceivedMail], bool], timeout: float = 20.0) -> ReceivedMail:
        return wait_for(lambda: next((m for m in self.messages() if predicate(m)), None), timeout=timeout)


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[FakeSMTP]:
    """The fake server, started, with Django's SMTP backend pointed at it (plain SMTP, no login)."""
    server = FakeSMTP()
    server.controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "Clínica Demo <hola@clinica.example>"
    try:
        yield server
    finally:
        server.stop()
