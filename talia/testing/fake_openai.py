"""A fake OpenAI API on a real loopback socket, for tests that drive the real `openai` SDK.

    with FakeOpenAI() as fake:                      # or the `fake_openai` pytest fixture
        fake.when(lambda body: "@" in last_user_text(body), tool_calls(("set_email", {"email": "a@b.co"})))
        fake.script(text("Hola"))
        client = OpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        ...
        assert fake.requests_to("/v1/responses")[0].body["tools"][0]["strict"] is True

Routes: POST /v1/responses, GET /v1/responses/{id}, POST /v1/chat/completions, POST /v1/embeddings.
Anything else is a 404 with an error body, as the real API answers an unknown URL.

`stream: true` on /responses and /chat/completions is answered as the real API streams (server-sent
events over a chunked body): Responses events from `response.created` to `response.completed`, each with
its `sequence_number`, text as `response.output_text.delta` and calls as
`response.function_call_arguments.delta`; Chat Completions `chat.completion.chunk`s with `delta.content`
and `delta.tool_calls[i]` pieces (the first piece of a call carries its id and name), the usage chunk
when `stream_options.include_usage` asks for it, then `data: [DONE]`. Text is cut into word-sized
deltas. `cut(text)` streams `text` and then drops the connection with no final event, as a network
failure mid-reply would; errors and delays are answered before any event, as the real API does.

Replies to /responses and /chat/completions come from, in order: the first rule (`when`) whose
predicate matches the request body, else the next scripted reply (`script`, FIFO), else `default`.
The default default is a loud 500 ("fake server: no scripted reply ..."), so a test that forgot to
script a turn fails instead of passing on a made-up answer. Embeddings need no script: every text
gets a deterministic unit vector (`embedding_vector`); rules with `path="/v1/embeddings"` can still
inject errors or delays there.

It checks what the real API checks, so protocol bugs in the code under test fail here too:
- an unknown, forgotten or `store: false` `previous_response_id` is a 400 previous_response_not_found;
- every function_call_output needs an earlier function_call with the same call_id, and every
  function_call in the conversation (the chain behind previous_response_id plus the new input) needs
  an output, else 400 (the two messages the real API gives);
- in Chat Completions every assistant `tool_calls` id needs a following role:"tool" message, and a
  tool message needs a preceding call, else 400.
Mistakes in the script itself (a call to a tool the request did not declare, several calls when
`parallel_tool_calls` is false) are loud 500s with `x-should-retry: false`, so the SDK does not retry
them.

Token counts are whitespace-separated words: input = instructions plus every text in the
conversation (the chain included, as the real API bills the whole context); output = the reply text
and call arguments.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import secrets
import socket
import string
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

JSON = dict[str, Any]
_CUT_HEADER = "x-fake-cut"  # internal: the answer is streamed, then the connection dropped

RESPONSES = "/v1/responses"
CHAT_COMPLETIONS = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
_GENERATION = (RESPONSES, CHAT_COMPLETIONS)
_MAX_EMBEDDING_INPUTS = 2048


# --- Reply specs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextReply:
    """The assistant answers with this text (a message item / `choices[0].message.content`).

    `pace`: seconds between streamed events, so a watcher sees the reply grow (0: all at once).
    """

    text: str
    pace: float = 0.0


@dataclass(frozen=True)
class CutReply:
    """A streamed reply that breaks: `text` arrives as deltas, then the connection drops (no final
    event). A request without `stream` gets the connection dropped without an answer."""

    text: str
    pace: float = 0.0


@dataclass(frozen=True)
class ToolCallsReply:
    """The assistant calls these functions, in parallel when there are several."""

    calls: tuple[tuple[str, JSON], ...]


@dataclass(frozen=True)
class ErrorReply:
    """A non-2xx answer with the API's `{"error": {message, type, param, code}}` body."""

    status: int
    message: str
    type: str
    param: str | None = None
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SlowReply:
    """Wait `seconds`, then answer with `then` (None: as if this spec were not there)."""

    seconds: float
    then: Reply | None = None


Reply = TextReply | ToolCallsReply | ErrorReply | SlowReply | CutReply


def text(content: str, *, pace: float = 0.0) -> TextReply:
    """A Responses or Chat reply whose assistant text is `content` (streamed `pace` s per event)."""
    return TextReply(content, pace)


def cut(partial: str, *, pace: float = 0.0) -> CutReply:
    """A streamed reply that sends `partial` and then loses its connection mid-reply."""
    return CutReply(partial, pace)


def tool_calls(*calls: tuple[str, Mapping[str, Any]]) -> ToolCallsReply:
    """One reply calling each `(name, arguments)`; every call gets fresh `fc_…`/`call_…` ids."""
    if not calls:
        raise ValueError("tool_calls() needs at least one (name, arguments) pair")
    return ToolCallsReply(tuple((name, dict(arguments)) for name, arguments in calls))


# What the real API sends for each status when nothing more specific applies: (type, code, message).
_ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", None, "Not found."),
    409: ("invalid_request_error", None, "Conflict."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error(
    status: int,
    message: str | None = None,
    *,
    type: str | None = None,
    param: str | None = None,
    code: str | None = None,
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> ErrorReply:
    """An error reply with any status; type, code and message default to what the API sends for it.

    `retry_after` sets the `retry-after` header (seconds), which the SDK honours up to 120 s.
    """
    default_type, default_code, default_message = _ERROR_DEFAULTS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"Error {status}.")
    )
    extra = dict(headers or {})
    if retry_after is not None:
        extra["retry-after"] = f"{retry_after:g}"
    return ErrorReply(
        status,
        message if message is not None else default_message,
        type if type is not None else default_type,
        param,
        code if code is not None else default_code,
        tuple(extra.items()),
    )


def slow(seconds: float, then: Reply | None = None) -> SlowReply:
    """Delay the answer by `seconds` (to trip client timeouts), then reply with `then`.

    With `then=None` the request is answered as it would have been without the delay: the next
    scripted reply (or the default) for /responses and /chat/completions, the vectors for embeddings.
    """
    return SlowReply(seconds, then)


def _loud(message: str) -> ErrorReply:
    """A fake-server failure: the test or the script is wrong, not the code under test."""
    return ErrorReply(500, f"fake server: {message}", "server_error", headers=(("x-should-retry", "false"),))


# --- Request helpers, for rules and assertions ---------------------------------------------------


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text")
        )
    return ""


def last_user_text(body: Mapping[str, Any]) -> str:
    """The latest user text in a Responses `input` or Chat `messages`; "" when there is none.

    Handles a plain string input, message items with string content or a list of
    `input_text`/`text` parts (joined with newlines).
    """
    items = body.get("messages") if "messages" in body else body.get("input")
    if isinstance(items, str):
        return items
    for item in reversed(items if isinstance(items, list) else []):
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            return _content_text(item.get("content"))
    return ""


def tool_outputs(body: Mapping[str, Any]) -> dict[str, str]:
    """The tool results a request sends back, by call id: Responses `function_call_output` items
    or Chat role:"tool" messages. Non-string outputs (lists of parts) are returned as their text."""
    found: dict[str, str] = {}
    items = body.get("messages") if "messages" in body else body.get("input")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            found[str(item.get("call_id"))] = _content_text(item.get("output"))
        elif item.get("role") == "tool":
            found[str(item.get("tool_call_id"))] = _content_text(item.get("content"))
    return found


def embedding_vector(text: str, dimensions: int = 1536) -> list[float]:
    """The unit vector the fake returns for `text` (float32 precision).

    Seeded from SHA-256 of the text. A shorter `dimensions` gives the renormalised prefix of the
    longer vector, as text-embedding-3 models do.
    """
    raw: list[float] = []
    block = 0
    while len(raw) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        raw.extend(word / 2**31 - 1.0 for word in struct.unpack("<8I", digest))
        block += 1
    head = raw[:dimensions]
    norm = math.sqrt(sum(value * value for value in head))
    packed = struct.pack(f"<{dimensions}f", *(value / norm for value in head))
    return list(struct.unpack(f"<{dimensions}f", packed))


# --- The server ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One request as it reached the server. Header names are lower-cased; body is the parsed JSON."""

    method: str
    path: str
    headers: dict[str, str]
    body: JSON | None


@dataclass(frozen=True)
class _Rule:
    predicate: Callable[[JSON], bool]
    reply: Reply
    path: str | None


@dataclass(frozen=True)
class _Stored:
    response: JSON
    context: list[JSON]  # every item of the conversation up to and including this response's output


_Out = tuple[int, dict[str, str], JSON]
_ALNUM = string.ascii_letters + string.digits


def _hex_id(prefix: str) -> str:
    return prefix + secrets.token_hex(24)


def _alnum_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


_NOT_TEXT = frozenset({"type", "role", "id", "call_id", "tool_call_id", "status", "name"})


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(item) for item in value)
    if isinstance(value, dict):
        return sum(_words(item) for key, item in value.items() if key not in _NOT_TEXT)
    return 0


def _error_out(reply: ErrorReply) -> _Out:
    body = {"error": {"message": reply.message, "type": reply.type, "param": reply.param, "code": reply.code}}
    return reply.status, dict(reply.headers), body


def _bad_request(message: str, param: str | None = None, code: str | None = None) -> _Out:
    return _error_out(ErrorReply(400, message, "invalid_request_error", param, code))


def _input_items(value: Any) -> list[JSON]:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _unpaired_call(context: list[JSON]) -> _Out | None:
    """The real API's 400s for a function_call without output, or an output without a call."""
    called: list[str] = []
    answered: set[str] = set()
    for item in context:
        if item.get("type") == "function_call":
            called.append(str(item.get("call_id")))
        elif item.get("type") == "function_call_output":
            call_id = str(item.get("call_id"))
            if call_id not in called:
                return _bad_request(f"No tool call found for function call output with call_id {call_id}.", "input")
            answered.add(call_id)
    for call_id in called:
        if call_id not in answered:
            return _bad_request(f"No tool output found for function call {call_id}.", "input")
    return None


def _unanswered_tool_message(messages: list[Any]) -> _Out | None:
    """The real Chat Completions 400s for unanswered tool_calls and for orphan tool messages."""
    pending: list[str] = []
    asked_at = 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in pending:
                return _bad_request(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            pending.remove(message["tool_call_id"])
            continue
        if pending:
            break
        if message.get("role") == "assistant" and message.get("tool_calls"):
            pending = [str(call.get("id")) for call in message["tool_calls"]]
            asked_at = index
    if pending:
        return _bad_request(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
            f"messages.[{asked_at}].role",
        )
    return None


def _script_mistake(body: JSON, reply: ToolCallsReply, chat: bool) -> ErrorReply | None:
    """A scripted call the real model could not make for this request."""
    declared: set[str] = set()
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            declared.add(str((tool.get("function") or {}).get("name") if chat else tool.get("name")))
    for name, _ in reply.calls:
        if name not in declared:
            return _loud(f"scripted a call to {name!r}, but the request declares no such tool: {sorted(declared)}")
    if body.get("tool_choice") == "none":
        return _loud("scripted tool calls, but the request has tool_choice='none'")
    if len(reply.calls) > 1 and body.get("parallel_tool_calls") is False:
        return _loud(f"scripted {len(reply.calls)} calls, but the request has parallel_tool_calls=false")
    return None


_PACE_HEADER = "x-fake-pace"  # internal: seconds between streamed events

# One server-sent event: its `event:` name (None for Chat chunks), its JSON data, whether it carries text.
_Event = tuple[str | None, str, bool]


def _stream_headers(reply: TextReply | ToolCallsReply | CutReply) -> dict[str, str]:
    """Internal headers telling _serve how to stream this reply (removed before anything is sent)."""
    headers = {}
    if isinstance(reply, CutReply):
        headers[_CUT_HEADER] = "1"
    if isinstance(reply, TextReply | CutReply) and reply.pace:
        headers[_PACE_HEADER] = str(reply.pace)
    return headers


def _pieces(value: str, size: int = 0) -> list[str]:
    """`value` cut as a model streams it: words with their leading space (or `size`-character slices)."""
    if size:
        return [value[start : start + size] for start in range(0, len(value), size)]
    return re.findall(r"\s*\S+|\s+$", value)


def _response_events(response: JSON) -> list[_Event]:
    """The Responses API's stream for a finished `response`, in the order the real API sends it."""
    events: list[_Event] = []

    def emit(kind: str, is_text: bool = False, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(events), **fields}
        events.append((kind, json.dumps(data), is_text))

    started = {**response, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    emit("response.created", response=started)
    emit("response.in_progress", response=started)
    for index, item in enumerate(response["output"]):
        if item["type"] == "message":
            emit(
                "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []}
            )
            for part_index, part in enumerate(item["content"]):
                where = {"item_id": item["id"], "output_index": index, "content_index": part_index}
                emit("response.content_part.added", **where, part={**part, "text": ""})
                for piece in _pieces(part["text"]):
                    emit("response.output_text.delta", True, **where, delta=piece, logprobs=[])
                emit("response.output_text.done", **where, text=part["text"], logprobs=[])
                emit("response.content_part.done", **where, part=part)
        else:  # function_call
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for piece in _pieces(item["arguments"], 8):
                emit("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=piece)
            emit(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.completed", response=response)
    return events


def _chat_chunks(completion: JSON, body: JSON) -> list[_Event]:
    """Chat Completions' stream for a finished `completion`: `chat.completion.chunk`s, then [DONE]."""
    usage = (body.get("stream_options") or {}).get("include_usage") is True
    base = {key: completion[key] for key in ("id", "created", "model", "service_tier", "system_fingerprint")}
    events: list[_Event] = []

    def chunk(delta: JSON, finish_reason: str | None = None, is_text: bool = False) -> None:
        data: JSON = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if usage:
            data["usage"] = None
        events.append((None, json.dumps(data), is_text))

    choice = completion["choices"][0]
    message = choice["message"]
    chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in _pieces(message.get("content") or ""):
        chunk({"content": piece}, is_text=True)
    for index, call in enumerate(message.get("tool_calls") or []):
        first = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunk({"tool_calls": [first]})
        for piece in _pieces(call["function"]["arguments"], 8):
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    chunk({}, choice["finish_reason"])
    if usage:
        events.append(
            (
                None,
                json.dumps({**base, "object": "chat.completion.chunk", "choices": [], "usage": completion["usage"]}),
                False,
            )
        )
    events.append((None, "[DONE]", False))
    return events


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    """Keeps track of open (keep-alive) connections so stop() can cut them."""

    daemon_threads = True
    fake: FakeOpenAI

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class FakeOpenAI:
    """The fake API server. `start()` it (or use it as a context manager) and point the SDK at `base_url`."""

    def __init__(self, default: Reply | None = None) -> None:
        """`default` answers generation requests no rule or scripted reply covers; None: a loud 500."""
        self.default = default
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._queue: deque[Reply] = deque()
        self._rules: list[_Rule] = []
        self._stored: dict[str, _Stored] = {}
        self._requests: list[Recorded] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> FakeOpenAI:
        """Listen on 127.0.0.1 on a free port, serving from a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0))
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed replies still waiting are cut short."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's `base_url` (or OPENAI_BASE_URL): "http://127.0.0.1:PORT/v1"."""
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # Scripting

    def script(self, *replies: Reply) -> None:
        """Queue replies, used in order by /responses and /chat/completions requests no rule matches."""
        with self._lock:
            self._queue.extend(replies)

    def when(self, predicate: Callable[[JSON], bool], reply: Reply, *, path: str | None = None) -> None:
        """Answer with `reply` every request whose parsed body makes `predicate` true.

        Rules are checked in the order added, before the queue. By default they apply to
        /responses and /chat/completions; `path` (e.g. "/v1/embeddings") limits one to that route.
        """
        with self._lock:
            self._rules.append(_Rule(predicate, reply, _normalise(path) if path else None))

    @property
    def unused(self) -> list[Reply]:
        """Scripted replies no request has consumed yet."""
        with self._lock:
            return list(self._queue)

    def forget(self, response_id: str) -> None:
        """Drop a stored response, as if it had expired: GET and chaining to it now fail."""
        with self._lock:
            self._stored.pop(response_id, None)

    def forget_all(self) -> None:
        """Drop every stored response."""
        with self._lock:
            self._stored.clear()

    last_user_text = staticmethod(last_user_text)
    tool_outputs = staticmethod(tool_outputs)

    # Recording

    @property
    def requests(self) -> list[Recorded]:
        """Every request received, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[Recorded]:
        """The requests to one route; "/v1/responses" and "/responses" mean the same."""
        wanted = _normalise(path)
        return [request for request in self.requests if request.path == wanted]

    def stored_response(self, response_id: str) -> JSON | None:
        """The response body stored under `response_id`, if any."""
        with self._lock:
            stored = self._stored.get(response_id)
        return stored.response if stored else None

    # Serving

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.partition("?")[0]
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        body: JSON | None = None
        parse_error = False
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            parse_error = not isinstance(parsed, dict)
            body = parsed if isinstance(parsed, dict) else None
        with self._lock:
            self._requests.append(Recorded(handler.command, path, headers, body))
        try:
            status, extra_headers, payload = self._dispatch(handler.command, path, headers, body, parse_error)
        except Exception as exc:  # a bug in a predicate or in this fake: say so in the answer
            status, extra_headers, payload = _error_out(_loud(f"{type(exc).__name__}: {exc}"))
        cut_after = extra_headers.pop(_CUT_HEADER, None)
        pace = float(extra_headers.pop(_PACE_HEADER, 0) or 0)
        if self._stopping.is_set() or (cut_after is not None and not (body or {}).get("stream")):
            handler.close_connection = True  # stopped while delaying, or a cut reply: hang up without an answer
            return
        if status == 200 and path in _GENERATION and (body or {}).get("stream"):
            events = _response_events(payload) if path == RESPONSES else _chat_chunks(payload, body or {})
            self._stream(handler, events, pace, cut=cut_after is not None)
            return
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("x-request-id", "req_" + secrets.token_hex(16))
            for name, value in extra_headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (a timeout test) or stop() cut the connection

    def _stream(self, handler: BaseHTTPRequestHandler, events: list[_Event], pace: float, cut: bool) -> None:
        """Server-sent events over a chunked body; with `cut`, the events up to the last text delta and
        then a dropped connection (no last chunk, so the client sees the body end mid-stream)."""
        if cut:
            texts = [index for index, (_name, _data, is_text) in enumerate(events) if is_text]
            events = events[: texts[-1] + 1 if texts else 1]
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.send_header("Cache-Control", "no-cache")
            handler.send_header("x-request-id", "req_" + secrets.token_hex(16))
            handler.end_headers()
            for name, data, _is_text in events:
                frame = ((f"event: {name}\n" if name else "") + f"data: {data}\n\n").encode()
                handler.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                handler.wfile.flush()
                if pace and self._stopping.wait(pace):
                    break
            if cut or self._stopping.is_set():
                handler.close_connection = True
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)
                return
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True  # the client gave up

    def _dispatch(self, method: str, path: str, headers: dict[str, str], body: JSON | None, parse_error: bool) -> _Out:
        if not headers.get("authorization", "").startswith("Bearer "):
            return _error_out(
                ErrorReply(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an Authorization header "
                    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                )
            )
        if method == "GET" and path.startswith(RESPONSES + "/"):
            response_id = path.removeprefix(RESPONSES + "/")
            stored = self.stored_response(response_id)
            if stored is None:
                return _error_out(error(404, f"Response with id '{response_id}' not found."))
            return 200, {}, stored
        if method != "POST" or path not in (*_GENERATION, EMBEDDINGS):
            return _error_out(error(404, f"Invalid URL ({method} {path})"))
        if body is None:
            return _bad_request(
                "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload."
                if parse_error
                else "You must provide a JSON body."
            )
        if path == EMBEDDINGS:
            return self._embeddings(body)
        if path == RESPONSES:
            return self._responses(body)
        return self._chat(body)

    def _choose(self, path: str, body: JSON) -> Reply | None:
        with self._lock:
            rules = list(self._rules)
        for rule in rules:
            applies = path == rule.path if rule.path else path in _GENERATION
            if applies and rule.predicate(body):
                return self._after_delays(rule.reply, path)
        return self._after_delays(self._next_scripted(path), path)

    def _next_scripted(self, path: str) -> Reply | None:
        if path not in _GENERATION:
            return None
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.default

    def _after_delays(self, reply: Reply | None, path: str) -> Reply | None:
        while isinstance(reply, SlowReply):
            self._stopping.wait(reply.seconds)
            reply = reply.then if reply.then is not None else self._next_scripted(path)
        return reply

    def _generation_reply(self, path: str, body: JSON) -> TextReply | ToolCallsReply | CutReply | _Out:
        reply = self._choose(path, body)
        if reply is None:
            return _error_out(_loud(f"no scripted reply for POST {path} (script() one, or set default=)"))
        if isinstance(reply, ErrorReply):
            return _error_out(reply)
        if isinstance(reply, ToolCallsReply):
            mistake = _script_mistake(body, reply, chat=path == CHAT_COMPLETIONS)
            if mistake:
                return _error_out(mistake)
        assert isinstance(reply, TextReply | ToolCallsReply | CutReply)
        return reply

    def _responses(self, body: JSON) -> _Out:
        previous_id = body.get("previous_response_id")
        history: list[JSON] = []
        if previous_id is not None:
            with self._lock:
                previous = self._stored.get(previous_id)
            if previous is None:
                # What the real API answers for an id it never produced, that expired (30 days), that
                # was created with store=false or that was deleted: a 400 (not a 404), with this code
                # and param. Seen in public reports of the error; a test can still script any status.
                return _bad_request(
                    f"Previous response with id '{previous_id}' not found.",
                    "previous_response_id",
                    "previous_response_not_found",
                )
            history = previous.context
        context = history + _input_items(body.get("input"))
        problem = _unpaired_call(context)
        if problem:
            return problem
        reply = self._generation_reply(RESPONSES, body)
        if not isinstance(reply, TextReply | ToolCallsReply | CutReply):
            return reply
        output: list[JSON]
        if isinstance(reply, TextReply | CutReply):
            output = [
                {
                    "type": "message",
                    "id": _hex_id("msg_"),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}],
                }
            ]
        else:
            output = [
                {
                    "type": "function_call",
                    "id": _hex_id("fc_"),
                    "call_id": _alnum_id("call_", 24),
                    "name": name,
                    "arguments": json.dumps(arguments),
                    "status": "completed",
                }
                for name, arguments in reply.calls
            ]
        input_tokens = _words(body.get("instructions")) + _words(context)
        output_tokens = _words(output)
        now = int(time.time())
        # Function tools are strict unless the request says strict=false; the echo shows the effective value.
        tools = [
            {**tool, "strict": tool.get("strict") is not False} if tool.get("type") == "function" else tool
            for tool in body.get("tools") or []
        ]
        response = {
            "id": _hex_id("resp_"),
            "object": "response",
            "created_at": now,
            "status": "completed",
            "completed_at": now,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": body.get("model"),
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": previous_id,
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": tools,
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }
        if isinstance(reply, CutReply):
            return 200, _stream_headers(reply), response  # never completed, so never stored
        if body.get("store", True) is not False:
            with self._lock:
                self._stored[response["id"]] = _Stored(response, context + output)
        return 200, _stream_headers(reply), response

    def _chat(self, body: JSON) -> _Out:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _bad_request("[] is too short - 'messages'", "messages")
        problem = _unanswered_tool_message(messages)
        if problem:
            return problem
        reply = self._generation_reply(CHAT_COMPLETIONS, body)
        if not isinstance(reply, TextReply | ToolCallsReply | CutReply):
            return reply
        message: JSON = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if isinstance(reply, TextReply | CutReply):
            message["content"] = reply.text
            finish_reason = "stop"
        else:
            message["tool_calls"] = [
                {
                    "id": _alnum_id("call_", 24),
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
                for name, arguments in reply.calls
            ]
            finish_reason = "tool_calls"
        prompt_tokens = _words(messages)
        completion_tokens = _words(message)
        return (
            200,
            _stream_headers(reply),
            {
                "id": _alnum_id("chatcmpl-", 29),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": None,
            },
        )

    def _embeddings(self, body: JSON) -> _Out:
        reply = self._choose(EMBEDDINGS, body)
        if isinstance(reply, ErrorReply):
            return _error_out(reply)
        if reply is not None:
            return _error_out(_loud("only error() and slow() replies apply to /v1/embeddings"))
        model = body.get("model")
        if not model:
            return _bad_request("You must provide a model parameter.", "model")
        value = body.get("input")
        texts: list[Any]
        if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, int) for v in value)):
            texts = [value]  # one string, or one input already tokenised
        else:
            texts = value if isinstance(value, list) else []
        if not texts or any(t in ("", []) or not isinstance(t, str | list) for t in texts):
            return _bad_request("'$.input' is invalid. Please check the API reference.", "input")
        if len(texts) > _MAX_EMBEDDING_INPUTS:
            return _bad_request(
                f"'$.input' is invalid: at most {_MAX_EMBEDDING_INPUTS} inputs per request, got {len(texts)}.",
                "input",
            )
        native = 3072 if "3-large" in str(model) else 1536
        dimensions = body.get("dimensions")
        if dimensions is None:
            dimensions = native
        elif "text-embedding-3" not in str(model):
            return _bad_request("This model does not support specifying dimensions.", "dimensions")
        elif not isinstance(dimensions, int) or not 1 <= dimensions <= native:
            return _bad_request(f"Invalid 'dimensions': must be between 1 and {native}.", "dimensions")
        encoding = body.get("encoding_format", "float")  # the API's default; the SDK sends "base64"
        if encoding not in ("float", "base64"):
            return _bad_request("Invalid 'encoding_format': must be 'float' or 'base64'.", "encoding_format")
        data = []
        for index, item in enumerate(texts):
            vector = embedding_vector(item if isinstance(item, str) else json.dumps(item), dimensions)
            encoded: Any = vector
            if encoding == "base64":
                encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(max(1, _words(item)) if isinstance(item, str) else len(item) for item in texts)
        return (
            200,
            {},
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def _normalise(path: str) -> str:
    path = "/" + path.lstrip("/")
    return path if path.startswith("/v1/") else "/v1" + path


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started FakeOpenAI, stopped after the test. Settings and environment are left alone:
    point clients at `fake_openai.base_url` yourself (override_settings, OPENAI_BASE_URL)."""
    with FakeOpenAI() as fake:
        yield fake
