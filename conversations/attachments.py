"""Files in messages, on every channel: one representation, checked and stored in one place.

A message's files are `Message.metadata["attachments"]`, a list of dicts, whatever door they came
through or whoever sent them:
- `content_type`: the file's media type (for uploads, the type its content was sniffed as);
- `stored`: its name in Django's default storage once TalIA holds the file (absent while a provider's
  media is still being downloaded: WhatsApp's `url` is then the provider's address, never shown);
- `size` in bytes, and for uploads `name`, the sender's file name, cleaned (display only: the stored
  name is random, so nobody can guess another visitor's file).
Files are never served from a public MEDIA_URL: only the console's download (agents who may watch the
conversation) and the web chat's download (the visitor, by their session or a signed link) read them.
A deleted message takes its files with it.

Uploads (the widget, the console) go through `check_upload` + `store_upload`: the size is limited
(TALIA_ATTACHMENT_MAX_BYTES) and the type is decided by the file's first bytes (JPEG, PNG, WebP, GIF,
PDF), never by its name or the Content-Type the client claims.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpResponse
from django.utils.http import content_disposition_header

from conversations.models import Message

# What an upload may be, by its first bytes.
ALLOWED_TYPES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "application/pdf": "pdf",
}
IMAGE_TYPES = frozenset(t for t in ALLOWED_TYPES if t.startswith("image/"))
MAX_NAME = 120
MAX_CAPTION = 1000


class AttachmentError(ValueError):
    """An upload TalIA refuses; `status` is the HTTP status an API answers with, `code` machine-readable."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def sniff(head: bytes) -> str | None:
    """The allowed media type `head` (a file's first bytes) starts with; None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def clean_name(name: str, content_type: str) -> str:
    """A displayable file name: no path, no control characters, bounded, with the sniffed type's extension."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C").strip()
    stem = base.rsplit(".", 1)[0].strip(" .") if "." in base else base.strip(" .")
    extension = ALLOWED_TYPES[content_type]
    return f"{(stem or 'file')[: MAX_NAME - len(extension) - 1]}.{extension}"


@dataclass(frozen=True)
class Upload:
    """An upload that passed the checks: its sniffed type and cleaned name."""

    file: File
    content_type: str
    name: str
    size: int


def check_upload(file: File | None) -> Upload:
    """The upload if TalIA accepts it; raises AttachmentError (413 too large, 415 wrong type, 400 none/empty)."""
    if file is None:
        raise AttachmentError(400, "file_required", "Send the file as the multipart field 'file'.")
    size = file.size or 0
    limit = settings.TALIA_ATTACHMENT_MAX_BYTES
    if size > limit:
        raise AttachmentError(413, "file_too_large", f"The file is larger than {limit} bytes.")
    if size == 0:
        raise AttachmentError(400, "file_empty", "The file is empty.")
    file.seek(0)
    content_type = sniff(file.read(16))
    file.seek(0)
    if content_type is None:
        raise AttachmentError(
            415, "unsupported_file_type", "Only JPEG, PNG, WebP or GIF images and PDF documents are accepted."
        )
    return Upload(file=file, content_type=content_type, name=clean_name(file.name or "", content_type), size=size)


def store_upload(upload: Upload, folder: str) -> dict[str, Any]:
    """Save the checked upload in default storage under a random name; its attachment entry."""
    random_name = f"{folder}/{secrets.token_urlsafe(18)}.{ALLOWED_TYPES[upload.content_type]}"
    stored = default_storage.save(random_name, upload.file)
    return {"content_type": upload.content_type, "stored": stored, "size": upload.size, "name": upload.name}


def discard(entries: list[dict[str, Any]]) -> None:
    """Delete stored files no message kept (a duplicate upload, a refused send)."""
    for entry in entries:
        if entry.get("stored"):
            default_storage.delete(entry["stored"])


def stored_entry(message: Message, index: int) -> dict[str, Any] | None:
    """The message's attachment number `index` if its file is held; None otherwise."""
    items = message.metadata.get("attachments") or []
    item = items[index] if 0 <= index < len(items) and isinstance(items[index], dict) else None
    if not item or not item.get("stored") or not default_storage.exists(item["stored"]):
        return None
    return item


def file_response(item: dict[str, Any], *, inline: bool = False) -> HttpResponse:
    """The held file as a response: its stored type, `nosniff` and a sandboxing CSP, so a file never runs
    as a page of TalIA's origin; a download unless `inline` (images for an <img>).

    Read whole (files are bounded by TALIA_ATTACHMENT_MAX_BYTES or the provider's own limit): under ASGI
    a streamed file would be read into memory anyway, with a warning.
    """
    with default_storage.open(item["stored"], "rb") as stored:
        content = stored.read()
    response = HttpResponse(content, content_type=str(item.get("content_type") or "application/octet-stream"))
    response["Content-Disposition"] = content_disposition_header(not inline, download_name(item)) or ""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def download_name(item: dict[str, Any]) -> str:
    """The name a download is saved under: the sender's (cleaned) name, else the stored file's."""
    return str(item.get("name") or str(item["stored"]).rsplit("/", 1)[-1])


def is_inline(item: dict[str, Any]) -> bool:
    """Images may be shown in the page (an <img>); everything else is only ever a download."""
    return item.get("content_type") in IMAGE_TYPES


@receiver(post_delete, sender=Message, dispatch_uid="conversations.attachments.files_go_with_their_message")
def files_go_with_their_message(sender: Any, instance: Message, **kwargs: Any) -> None:
    """A deleted message (or its conversation or contact) takes its stored files with it, once the
    deletion commits (a rolled-back deletion keeps them)."""
    held = [item for item in instance.metadata.get("attachments") or [] if isinstance(item, dict)]
    if any(item.get("stored") for item in held):
        transaction.on_commit(lambda: discard(held))
