"""Request ids, log context, JSON log lines and optional Sentry: what ties one log line to its request.

- Every HTTP request and every socket gets a request id: the incoming `X-Request-ID` when it is a sane
  token (a proxy or the caller chose it), otherwise a new one; HTTP responses carry it back in
  `X-Request-ID`. A Celery task runs under the id of the request (or task) that queued it, carried in
  a message header, or under its own task id.
- The request id, and the conversation and channel once they are known (the inbox binds them when it
  stores a message, the assistant turn when it starts), live in context variables. They follow the work
  across asgiref's thread hops (which copy the context both ways) and are cleared at the start of each
  request, socket and task, so nothing leaks from one to the next.
- `ContextFilter` (on every handler, settings.LOGGING) copies them onto each log record;
  `JsonFormatter` (TALIA_LOG_FORMAT=json) writes one JSON object per line with them.
- `setup_sentry()` starts sentry-sdk when SENTRY_DSN is set and the package is installed.

Nothing here imports prometheus_client: `metrics_dir_for()` must run before it is imported anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase

logger = logging.getLogger("talia")

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only when it looks like an id (uuid, hex, a proxy's token), never free text.
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

request_id: ContextVar[str] = ContextVar("talia_request_id", default="")
conversation_id: ContextVar[str] = ContextVar("talia_conversation_id", default="")
channel: ContextVar[str] = ContextVar("talia_channel", default="")


def new_request_id(incoming: str | None = None) -> str:
    """`incoming` when it is a sane token, else a fresh random id."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def start(rid: str) -> None:
    """A new unit of work (request, socket, task): its id, and no conversation or channel yet."""
    request_id.set(rid)
    conversation_id.set("")
    channel.set("")


def bind(*, conversation: object = None, channel_name: str = "") -> None:
    """Name the conversation (and its channel) the current work is about, for the log lines that follow."""
    if conversation is not None:
        conversation_id.set(str(conversation))
    if channel_name:
        channel.set(channel_name)


def bind_conversation(conversation: Any) -> None:
    """`bind()` for a Conversation row (its id and channel)."""
    bind(conversation=conversation.pk, channel_name=conversation.channel)


# --- HTTP and sockets -------------------------------------------------------------------------------------


class RequestObservability:
    """First in MIDDLEWARE: the request id (header in and out) and the request's count and duration.

    Sync only, like the rest of the stack (talia/middleware.py): it runs in the request's one thread,
    and the async view's context changes come back to it through asgiref.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        from talia import metrics

        rid = new_request_id(request.headers.get(REQUEST_ID_HEADER))
        start(rid)
        began = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        metrics.observe_request(match.view_name if match else "", response.status_code, time.perf_counter() - began)
        response[REQUEST_ID_HEADER] = rid
        return response


class SocketObservability:
    """ASGI middleware for WebSockets: a request id per socket (from `X-Request-ID` when sent)."""

    def __init__(self, inner: Callable[..., Awaitable[None]]) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        incoming = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-request-id"), None)
        start(new_request_id(incoming))
        await self.inner(scope, receive, send)


TASK_HEADER = "talia_request_id"


def task_published(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Celery's before_task_publish: a task queued by a request (or by another task) carries its id."""
    rid = request_id.get()
    if rid and headers is not None:
        headers.setdefault(TASK_HEADER, rid)


def task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Celery's task_prerun: the task runs under the id of the request that queued it (else its own
    task id), with no context left from the task that ran before it in this thread."""
    carried = getattr(getattr(task, "request", None), TASK_HEADER, None)
    start(carried if isinstance(carried, str) and _SANE_ID.fullmatch(carried) else task_id or uuid.uuid4().hex)


# --- Log records --------------------------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Copies the request id, conversation id and channel onto every record (empty when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.conversation_id = conversation_id.get()
        record.channel = channel.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context, and the
    traceback when there is one. The message is what the masking filter left (talia/logmask.py)."""

    CONTEXT = ("request_id", "conversation_id", "channel")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.CONTEXT:
            value = getattr(record, name, "")
            if value:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


# --- Metrics across processes -------------------------------------------------------------------------------


def metrics_dir_for(base: Path, name: str, *, wipe: bool) -> Path:
    """The prometheus_client multiprocess directory of one process role under `base`, emptied when `wipe`.

    Each role started on a host keeps its own subdirectory (a restart resets only its own counters,
    which Prometheus reads as a counter reset); the web process's scrape merges every subdirectory.
    """
    path = base / name
    if wipe and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare_metrics_env(role: str) -> None:
    """Before a `python -m talia` role starts its processes: PROMETHEUS_MULTIPROC_DIR, in the environment
    they inherit, names this role's fresh subdirectory of TALIA_METRICS_DIR (`web`, `beat`, or for a worker
    its queues: `worker-turns-deliveries-ingest-analysis`, `worker-turns`...). Left alone when the operator set it."""

    from django.conf import settings

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    name = f"worker-{'-'.join(settings.TALIA_WORKER_QUEUES)}" if role == "worker" else role
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir_for(Path(settings.TALIA_METRICS_DIR), name, wipe=True))


# --- Sentry ---------------------------------------------------------------------------------------------------


def setup_sentry(dsn: str, *, environment: str = "", traces_sample_rate: float = 0.0) -> bool:
    """Start sentry-sdk with the Django and Celery integrations; False (and one warning) without it."""
    if not dsn:
        return False
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.django import DjangoIntegration
    except ImportError:
        logger.warning("SENTRY_DSN is set but sentry-sdk is not installed (pip install -r requirements-sentry.txt)")
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        traces_sample_rate=traces_sample_rate,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
    )
    return True
