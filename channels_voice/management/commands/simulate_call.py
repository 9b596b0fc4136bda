"""Call TalIA from the terminal, as the dev phone's call tab does from the browser (channels_voice.simulator).

    manage.py simulate_call --say "Hola, soy Ana" --say "Quiero una cita"   # non-interactive (CI)
    manage.py simulate_call                                                  # type the caller's lines
    echo "Hola" | manage.py simulate_call                                    # lines from stdin
    manage.py simulate_call --url http://127.0.0.1:8000 --say "Hola"         # over HTTP to a running TalIA

By default the call is played in this process through Django's test Client, on the configured database
and Redis (`make run`'s embedded ones when no URLs are set), so it works beside a running `make run`
without knowing its Auth Token: the assistant's turns are answered by the running Celery worker. With
`--url` the webhooks go over HTTP to that TalIA instead, signed with `--auth-token` (default
TALIA_TWILIO_AUTH_TOKEN), which must be the token that server checks with.

TalIA's spoken lines are printed as `TalIA: ...`; the caller's lines come from `--say` options (in order),
or else from stdin (one per line; an empty line or end of input hangs up). The call always ends with the
signed `completed` status callback. The command fails (CommandError) when a webhook is refused.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings

from channels_voice.simulator import DEFAULT_NUMBER, DEFAULT_TO, Call, CallState, ClientTransport, HttpTransport, Turn


def _host() -> str:
    """A host this TalIA serves (ALLOWED_HOSTS), for requests made in this process."""
    hosts = [host for host in settings.ALLOWED_HOSTS if host not in ("*", "") and not host.startswith(".")]
    return hosts[0] if hosts else "localhost"


class Command(BaseCommand):
    help = "Place a simulated phone call on TalIA: prints what TalIA says, sends what the caller says."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--say", action="append", default=[], help="A caller line (repeat for several); none: read stdin."
        )
        parser.add_argument("--from", dest="number", default=DEFAULT_NUMBER, help="The caller's number (E.164).")
        parser.add_argument("--to", default=DEFAULT_TO, help="The number called (E.164).")
        parser.add_argument("--url", default="", help="A running TalIA's base URL; unset: play the call in-process.")
        parser.add_argument("--auth-token", default="", help="With --url: the Auth Token to sign with.")

    def handle(self, *args: Any, **options: Any) -> None:
        lines = self._lines(options["say"])
        state = CallState.new(options["number"], options["to"])
        if options["url"]:
            token = options["auth_token"] or settings.TALIA_TWILIO_AUTH_TOKEN
            if not token and settings.TALIA_TWILIO_VALIDATE_SIGNATURES:
                raise CommandError("--url needs --auth-token (or TALIA_TWILIO_AUTH_TOKEN) to sign the webhooks.")
            transport: HttpTransport | ClientTransport = HttpTransport(options["url"].rstrip("/"))
            self._play(Call(transport, token, state), lines)
            return
        token = settings.TALIA_TWILIO_AUTH_TOKEN or secrets.token_hex(16)
        # In this process only: with no Auth Token configured, sign and check with a throwaway one.
        with override_settings(TALIA_TWILIO_AUTH_TOKEN=token):
            transport = ClientTransport(host=_host(), public_base=settings.TALIA_PUBLIC_BASE_URL)
            self._play(Call(transport, token, state), lines)

    def _lines(self, said: list[str]) -> Iterator[str]:
        if said:
            yield from said
            return
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                self.stdout.write("Caller> ", ending="")
                self.stdout.flush()
            line = sys.stdin.readline()
            if not line.strip():
                return
            yield line.strip()

    def _play(self, call: Call, lines: Iterator[str]) -> None:
        self.stdout.write(f"Calling TalIA from {call.state.number} (CallSid {call.state.call_sid})")
        self._print(call.dial())
        try:
            for line in lines:
                if not call.listening:
                    self.stdout.write("(TalIA is not listening any more)")
                    break
                self.stdout.write(f"Caller: {line}")
                self._print(call.say(line))
        finally:
            status, body = call.hang_up()
        if status != 200:
            raise CommandError(f"The completed status callback was refused: HTTP {status} {body[:300]}")
        self.stdout.write(f"Call {call.state.call_sid} completed.")

    def _print(self, turn: Turn) -> None:
        for spoken in turn.said:
            self.stdout.write(f"TalIA: {spoken.text}")
        if turn.hung_up:
            self.stdout.write("(TalIA hung up)")
        if turn.error:
            detail = turn.answers[-1][:300] if turn.answers else ""
            raise CommandError(f"{turn.error} {detail}".strip())
