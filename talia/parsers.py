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


# Room for the multipart envelope and the small fields (session id, caption) around the file.
MULTIPART_OVERHEAD = 64 * 1024


class UploadParser(parsers.MultiPartParser):
    """Multipart for the file uploads (widget and console): a body declared larger than the largest
    accepted file is refused with 413 before it is parsed; the file itself is checked by
    conversations.attachments.check_upload."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        limit = settings.TALIA_ATTACHMENT_MAX_BYTES
        try:
            too_large = int(declared or 0) > limit + MULTIPART_OVERHEAD
        except ValueError:
            too_large = False
        if too_large:
            from talia.api import ApiError

            raise ApiError(413, "file_too_large", f"The file is larger than {limit} bytes.")
        return super().parse(stream, media_type, parser_context)
