"""Daphne, with its access log going through logging: `python -m talia.runtime.web [daphne's arguments]`.

Daphne's own command writes the access log straight to stdout (or `--access-log FILE`), past Python's
logging, so nothing could mask the session ids and tokens in the request paths it prints. This command
takes exactly Daphne's arguments and runs Daphne's own command line, with one difference: the access log
lines (the same NCSA-style text) are written through the `daphne.access` logger at INFO, where
settings.LOGGING's `mask_secrets` filter masks them on every handler (talia/logmask.py), and the line is
masked before it is logged too. `make run` and the test server start Daphne this way; so should
production. `-v 0` still turns the access log off; `--access-log FILE` no longer names a file (route the
`daphne.access` logger in LOGGING instead). `manage.py runserver` (Daphne's) already logs through logging.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from daphne.access import AccessLogGenerator
from daphne.cli import CommandLineInterface
from daphne.server import Server

from talia.logmask import mask

logger = logging.getLogger("daphne.access")


class AccessLog(AccessLogGenerator):
    """Daphne's access log entries, masked, as records of the `daphne.access` logger."""

    def __init__(self) -> None:
        super().__init__(stream=None)

    def write_entry(
        self,
        host: Any,
        date: datetime.datetime,
        request: str,
        status: Any = None,
        length: Any = None,
        ident: Any = None,
        user: Any = None,
    ) -> None:
        logger.info(
            '%s %s %s [%s] "%s" %s %s',
            host,
            ident or "-",
            user or "-",
            date.strftime("%d/%b/%Y:%H:%M:%S"),
            mask(request),
            status or "-",
            length or "-",
        )


class MaskedServer(Server):
    def __init__(self, *args: Any, action_logger: Any = None, **kwargs: Any) -> None:
        # Daphne's command line builds a logger that writes to a stream; ours logs instead. None (-v 0)
        # stays None: no access log at all.
        if action_logger is not None:
            action_logger = AccessLog()
        super().__init__(*args, action_logger=action_logger, **kwargs)


class WebCommandLine(CommandLineInterface):
    server_class = MaskedServer


def main() -> None:
    WebCommandLine.entrypoint()


if __name__ == "__main__":
    main()
