"""Prometheus metric families counted where things happen, and the one-line hooks that count them.

Counted in whichever process does the work: Daphne (HTTP requests, webhook acks) and the Celery workers
(assistant turns, tool calls, provider errors, delivery failures). With PROMETHEUS_MULTIPROC_DIR set
(`python -m talia` roles and `make run` set it, under TALIA_METRICS_DIR) prometheus_client keeps each
process's values in a small memory-mapped file there, and the web process's `/metrics` merges the files
of every process on its host (talia/metrics_scrape.py). Without it (tests, a bare `manage.py`), values
live in this process's registry.

An increment is a dictionary lookup and an add (a write to a mapped page in multiprocess mode): no
database, Redis or network work on the hot path. What is read from the database or Redis (queues, agents
online, Celery queue depths) is read at scrape time only. Label values come from bounded sets (route
names, engine names, registered tool names, channel names), never from input.
"""

from __future__ import annotations

from django.conf import settings
from prometheus_client import Counter, Histogram

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

HTTP_REQUESTS = Counter(
    "talia_http_requests_total", "HTTP requests answered, by route name and status class.", ["view", "status"]
)
HTTP_DURATION = Histogram(
    "talia_http_request_duration_seconds",
    "Time to answer an HTTP request (through the whole middleware stack), by route name.",
    ["view"],
    buckets=HTTP_BUCKETS,
)
TURNS = Counter(
    "talia_assistant_turns_total", "Assistant turns finished, by engine and outcome.", ["engine", "outcome"]
)
TURN_DURATION = Histogram(
    "talia_assistant_turn_duration_seconds",
    "Time from a turn's claim to its recorded outcome, by engine and outcome.",
    ["engine", "outcome"],
    buckets=TURN_BUCKETS,
)
TOOL_CALLS = Counter(
    "talia_tool_calls_total", "Tool calls run by the assistant, by tool and outcome.", ["tool", "outcome"]
)
PROVIDER_ERRORS = Counter(
    "talia_provider_errors_total",
    "Language-model provider failures in a turn, by engine, HTTP status (or 'none') and whether retried.",
    ["engine", "status", "retried"],
)
PROVIDER_RETRIES = Counter(
    "talia_provider_retries_total", "Turns handed back to be retried later, by engine.", ["engine"]
)
WEBHOOK_ACKS = Counter(
    "talia_webhook_acks_total", "Provider webhooks acknowledged (2xx), by channel and route.", ["channel", "route"]
)
WEBHOOK_REFUSALS = Counter(
    "talia_webhook_refusals_total",
    "Provider webhooks refused (bad signature, invalid payload...), by channel and status class.",
    ["channel", "status"],
)
DELIVERY_FAILURES = Counter(
    "talia_delivery_failures_total",
    "Failed attempts to deliver an outbound message, by channel; final=true when it is not retried.",
    ["channel", "final"],
)

# The routes providers call, by route name: the channel their acks are counted under.
WEBHOOK_ROUTES = {
    "whatsapp:webhook": "whatsapp",
    "whatsapp:webhook-alias": "whatsapp",
    "whatsapp:status": "whatsapp",
    "voice:inbound": "voice",
    "voice:gather": "voice",
    "voice:wait": "voice",
    "voice:status": "voice",
    "voice:recording": "voice",
}
# The label of requests no route matched (404s, scanners): one value, whatever the path.
UNMATCHED = "unmatched"


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


def observe_request(view: str, status: int, seconds: float) -> None:
    """One HTTP request answered (talia.observability.RequestObservability)."""
    view = view or UNMATCHED
    status_class = _status_class(status)
    HTTP_REQUESTS.labels(view, status_class).inc()
    HTTP_DURATION.labels(view).observe(seconds)
    if (channel := WEBHOOK_ROUTES.get(view)) is not None:
        if status < 300:
            WEBHOOK_ACKS.labels(channel, view.partition(":")[2]).inc()
        else:
            WEBHOOK_REFUSALS.labels(channel, status_class).inc()


def turn_finished(engine: str, outcome: str, latency_ms: int | None) -> None:
    """An assistant turn's outcome was recorded (conversations.assistant.turns.finish)."""
    engine = engine or "none"
    TURNS.labels(engine, outcome).inc()
    if latency_ms is not None:
        TURN_DURATION.labels(engine, outcome).observe(latency_ms / 1000)


def provider_failed(engine: str, error: object, attempt: int) -> None:
    """A provider call failed in a turn's try number `attempt` (from 0); counted as retried when the turn
    goes back to be tried again (a retryable error before the last attempt, as the turn decides)."""
    engine = engine or "none"
    retried = bool(getattr(error, "retryable", False)) and attempt + 1 < settings.TALIA_ASSISTANT_MAX_ATTEMPTS
    status = getattr(error, "status", None)
    PROVIDER_ERRORS.labels(engine, str(status) if status else "none", "true" if retried else "false").inc()
    if retried:
        PROVIDER_RETRIES.labels(engine).inc()


def tool_called(name: str, known: bool, outcome: str) -> None:
    """A tool call ran (conversations.assistant.executor); names the model made up count as 'unknown'."""
    TOOL_CALLS.labels(name if known else "unknown", outcome).inc()


def delivery_failed(channel: str, *, final: bool) -> None:
    """An outbound message's delivery attempt failed (conversations.delivery)."""
    DELIVERY_FAILURES.labels(channel or "none", "true" if final else "false").inc()
