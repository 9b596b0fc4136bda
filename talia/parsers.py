"""The REST API's only parser: JSON read through talia.payloads, so a body is refused with a JSON error
(400, or 413 when too large) by the same rules as a socket frame, before any view or the database sees it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import parsers

from talia import payloads


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.TALIA_JSON_MAX_BYTES
        # Read one byte past the limit: enough to know the body is too large without holding all of it.
        raw = stream.read(limit + 1)
        try:
            return payloads.parse_object(raw, max_bytes=limit)
        except payloads.PayloadError as exc:
            # Imported here: talia.api imports DRF's views, whose settings import this module.
            from talia.api import ApiError

            raise ApiError(exc.status, exc.code, exc.message) from None
