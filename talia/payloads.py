"""Inbound JSON, checked once and by the same rules wherever it arrives: REST bodies and socket frames.

`parse_object` is the only way a client's JSON becomes Python data in TalIA. Its invariants:
- for *any* input it either returns a dict or raises PayloadError (never RecursionError, UnicodeError or
  another surprise that would turn into a 500 or a socket closed with 1011);
- what it returns came from at most `max_bytes` of UTF-8, is nested at most MAX_DEPTH levels, holds no
  NUL character and no lone surrogate in any key or string (Postgres refuses NUL in text, and a lone
  surrogate cannot be encoded as UTF-8 again), and holds only finite numbers with integers that fit in
  64 bits (a Postgres bigint), so nothing it lets through fails later in the database or the encoder.

PayloadError carries the `code` and `message` a client is told, and the HTTP status a REST answer uses.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deeper nesting than any of our payloads needs (they are flat objects), far below Python's recursion limit.
MAX_DEPTH = 8
INT64_MAX = 2**63 - 1

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class PayloadError(ValueError):
    """A client's JSON that is refused: `code` and `message` for the client, `status` for REST."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def too_large(max_bytes: int) -> PayloadError:
    return PayloadError("too_large", f"The JSON is larger than {max_bytes} bytes.", status=413)


def parse_object(raw: str | bytes, *, max_bytes: int) -> dict[str, Any]:
    """The JSON object in `raw` (UTF-8 bytes or text), or PayloadError saying why not."""
    if len(raw) > max_bytes:  # characters never outnumber bytes: a cheap first check on huge input
        raise too_large(max_bytes)
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("malformed_json", "The body is not UTF-8 text.") from None
    else:
        text = raw
        if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
            raise too_large(max_bytes)
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise _too_deep() from None
    except PayloadError:
        raise
    except ValueError as exc:  # JSONDecodeError, and int() past Python's digit limit
        raise PayloadError("malformed_json", f"The JSON cannot be read: {_short(exc)}.") from None
    if not isinstance(value, dict):
        raise PayloadError("not_an_object", "Send a JSON object ({...}) at the top level.")
    _check_tree(value)
    return value


def parse_frame(text_data: str | None, bytes_data: bytes | None, *, max_bytes: int) -> dict[str, Any]:
    """A WebSocket frame's JSON object; binary frames are refused like any other malformed input."""
    if text_data is None:
        if bytes_data is not None and len(bytes_data) > max_bytes:
            raise too_large(max_bytes)
        raise PayloadError("binary_frame", "Send JSON in text frames, not binary ones.")
    return parse_object(text_data, max_bytes=max_bytes)


def frame_type(content: dict[str, Any]) -> str | None:
    """The `type` of a frame when it is a string (a list or an object there must not reach a dict lookup)."""
    kind = content.get("type")
    return kind if isinstance(kind, str) else None


def _check_tree(value: Any) -> None:
    """Depth, text and numbers of a parsed document, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                raise _too_deep()
            for key, item in node.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                raise _too_deep()
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            _check_text(node)


def _check_text(text: str) -> None:
    found = _BAD_TEXT.search(text)
    if found is None:
        return
    what = "a NUL character" if found.group() == "\x00" else "a lone surrogate (an unpaired \\ud800-\\udfff escape)"
    raise PayloadError("invalid_text", f"Text may not contain {what}.")


def _int(digits: str) -> int:
    number = int(digits)
    if abs(number) > INT64_MAX:
        raise PayloadError("malformed_json", "Numbers must fit in 64 bits.")
    return number


def _float(digits: str) -> float:
    number = float(digits)
    if not math.isfinite(number):
        raise PayloadError("malformed_json", "Numbers must be finite.")
    return number


def _constant(name: str) -> float:
    raise PayloadError("malformed_json", f"{name} is not JSON.")


def _too_deep() -> PayloadError:
    return PayloadError("malformed_json", f"The JSON is nested deeper than {MAX_DEPTH} levels.")


def _short(exc: ValueError) -> str:
    return str(exc).split("\n", 1)[0][:120]
