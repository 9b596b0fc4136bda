"""Secrets never reach a log: visitor session ids, widget tokens and calendar feed tokens are masked.

A web visitor's session id is the key to their conversation (its history is one GET away), and it
travels in URLs: `?session_id=` on the visitor socket and `GET /api/webchat/messages`, a path segment
in `/api/webchat/history/<session id>`; the widget token rides along as `?token=`, and a calendar feed's
secret is its URL (`/calendar/<token>.ics`). Wherever a log line could carry one of them, `mask()`
keeps the first four characters and replaces the rest with "…" (`session_id=a1b2…`): enough to tell
sessions apart while reading a log, useless for taking one over.

`MaskSecrets` is a logging filter, and settings.LOGGING installs it on every handler (the console and
each area file), so it sees every record that is written, whichever logger it came from (Django's,
Daphne's, Celery's, ours) and including the text of tracebacks. Daphne writes its access log straight
to stdout, past logging: `talia.runtime.web` starts Daphne with an access log that goes through the
`daphne.access` logger instead, so it is masked too. The project's own log calls never log a session id.
"""

from __future__ import annotations

import logging
import re

KEEP = 4
ELLIPSIS = "…"

# `session_id=…`, `"session_id": "…"`, `'token': '…'`, `X-TalIA-Token: …`, `sessionid=…` (Django's cookie),
# `(session_id)=(…)` (a database error), `session_id%3D…` (an encoded query inside a URL).
_KEYED = re.compile(
    r"(?P<key>\b[\w-]*?(?:session_?id|token)\b(?:[\"']?\)?\s*[:=]\s*\(?[\"']?|%3D))(?P<value>[^\s&\"'#,;:)}\]<>]+)",
    re.IGNORECASE,
)
# Secrets that are a path segment: the widget's history URL and a calendar feed URL.
_IN_PATH = re.compile(r"(?P<key>/api/webchat/history/|/calendar/)(?P<value>[^\s/?&\"'#<>]+?)(?=\.ics\b|[\s/?\"'#<>]|$)")
# A web contact identity: `web:<session id>` (ContactIdentity's str()), `(web, <session id>)` (a database
# error's DETAIL line about its unique key).
_IDENTITY = re.compile(r"(?P<key>\bweb:|\(web, )(?P<value>[A-Za-z0-9_-]{8,128})\b")


def _hide(match: re.Match[str]) -> str:
    value = match.group("value")
    return match.group("key") + value[:KEEP] + ELLIPSIS


def mask(text: str) -> str:
    """`text` with every session id and token it carries cut to a short prefix."""
    if not text:
        return text
    for pattern in (_KEYED, _IN_PATH, _IDENTITY):
        text = pattern.sub(_hide, text)
    return text


class MaskSecrets(logging.Filter):
    """Masks the message, and the traceback text, of every record passing the handler it is installed on."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: logging would print both raw
            message = f"{record.msg} {record.args!r}"
        masked = mask(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True
