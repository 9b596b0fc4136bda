"""GET /metrics: the Prometheus exposition of this host's processes, plus what is read at scrape time.

Who may scrape: a client whose address is in TALIA_METRICS_ALLOWED_IPS (the address as the web chat
sees it: the peer, or the first untrusted X-Forwarded-For hop behind TALIA_TRUSTED_PROXIES), or a
request with `Authorization: Bearer <TALIA_METRICS_TOKEN>`. Anyone else gets 403 with a JSON error.

What is exposed:
- the counters and histograms of talia/metrics.py. In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set)
  they are merged from the files of every process under TALIA_METRICS_DIR on this host (each role keeps
  a subdirectory, talia/runtime/roles.py), so a worker's counts reach the web process's scrape. On
  several hosts each host's web process exposes its own host's processes: scrape every web host.
- gauges read now, each with a cheap query: the handoff queue (conversations waiting for an agent and
  the longest wait), pending assistant turns and the oldest, agents online (Redis presence), and the
  length of each Celery queue (Redis LLEN). A source that cannot answer is left out, and
  `talia_scrape_source_up{source}` says so, instead of failing the whole scrape.
"""

from __future__ import annotations

import glob
import hmac
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger("talia")

# kombu's Redis transport keeps a queue's messages of priority 0 under the queue's name and the others
# under `<name>\x06\x16<step>` (its default priority steps 0, 3, 6, 9).
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)


def allowed(request: HttpRequest) -> bool:
    """The bearer token, or a client address inside one of the allowed networks."""
    token = settings.TALIA_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    from channels_web.security import client_ip

    address = client_ip(
        request.META.get("REMOTE_ADDR"), {"x-forwarded-for": request.headers.get("X-Forwarded-For", "")}
    )
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.TALIA_METRICS_ALLOWED_NETWORKS)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return JsonResponse(
            {"error": {"code": "forbidden", "message": "Metrics are for the allowed addresses or the metrics token."}},
            status=403,
        )
    return HttpResponse(generate_latest(_Exposition()), content_type=CONTENT_TYPE_LATEST)


class _Exposition:
    """Everything one scrape shows, as one collector (generate_latest takes anything with collect())."""

    def collect(self) -> Iterator[Metric]:
        if multiprocess_dir():
            yield from MultiProcessCollector.merge(metric_files(), accumulate=True)
        else:
            yield from REGISTRY.collect()
        yield from scrape_time_metrics()


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def metric_files() -> list[str]:
    """The value files of every process on this host: each role's subdirectory of TALIA_METRICS_DIR, and
    PROMETHEUS_MULTIPROC_DIR itself when it was set elsewhere."""
    found = set(glob.glob(os.path.join(settings.TALIA_METRICS_DIR, "**", "*.db"), recursive=True))
    found.update(glob.glob(os.path.join(multiprocess_dir(), "*.db")))
    return sorted(found)


# --- Read at scrape time ----------------------------------------------------------------------------------


def scrape_time_metrics() -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "talia_scrape_source_up", "Whether a source read at scrape time answered (1) or not (0).", labels=["source"]
    )
    for source, read in SOURCES:
        try:
            families = list(read())
        except Exception:
            logger.warning("Metrics: could not read %s", source, exc_info=True)
            up.add_metric([source], 0)
            continue
        up.add_metric([source], 1)
        yield from families
    yield up


def _queues() -> Iterable[Metric]:
    from django.db.models import Count, Min, Q

    from conversations.models import AssistantRun, Conversation, ConversationStatus, HandoffRequest

    now = timezone.now()
    # From the queued conversations (index on status) to their pending requests (index on the key):
    # the cost follows the queue's length, not the history of every handoff.
    pending = Q(handoff_requests__status=HandoffRequest.Status.PENDING)
    handoffs = Conversation.objects.filter(status=ConversationStatus.QUEUED).aggregate(
        count=Count("id", distinct=True), oldest=Min("handoff_requests__created", filter=pending)
    )
    turns = AssistantRun.objects.filter(status=AssistantRun.Status.PENDING).aggregate(
        count=Count("id"), oldest=Min("queued_at")
    )
    yield _gauge("talia_handoff_queue_length", "Conversations waiting for an agent.", handoffs["count"])
    yield _gauge(
        "talia_handoff_queue_longest_wait_seconds",
        "How long the conversation waiting longest for an agent has waited (0 when none waits).",
        (now - handoffs["oldest"]).total_seconds() if handoffs["oldest"] else 0,
    )
    yield _gauge("talia_assistant_turns_pending", "Assistant turns recorded and not yet started.", turns["count"])
    yield _gauge(
        "talia_assistant_turns_pending_longest_wait_seconds",
        "How long the oldest pending assistant turn has waited (0 when none is pending).",
        max((now - turns["oldest"]).total_seconds(), 0) if turns["oldest"] else 0,
    )


def _agents() -> Iterable[Metric]:
    from conversations.console import presence

    ids = presence.online_agent_ids()
    if ids is None:
        raise RuntimeError("agent presence is unknown (Redis)")
    yield _gauge("talia_agents_online", "Agents with a console open (presence in Redis).", len(ids))


def celery_queues() -> list[str]:
    """Every queue TalIA's tasks go to: its four (TALIA_QUEUES) and any other a route names."""
    names = {settings.CELERY_TASK_DEFAULT_QUEUE, *settings.TALIA_QUEUES.values()}
    names.update(route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if route.get("queue"))
    return sorted(names)


def _celery() -> Iterable[Metric]:
    from talia.redis_client import get_redis

    client = get_redis()
    family = GaugeMetricFamily(
        "talia_celery_queue_length", "Tasks waiting in each Celery queue (Redis LLEN).", labels=["queue"]
    )
    with client.pipeline(transaction=False) as pipe:
        queues = celery_queues()
        for queue in queues:
            for key in (queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS)):
                pipe.llen(key)
        lengths = pipe.execute()
    per_queue = 1 + len(PRIORITY_STEPS)
    for index, queue in enumerate(queues):
        family.add_metric([queue], sum(lengths[index * per_queue : (index + 1) * per_queue]))
    yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


SOURCES: list[tuple[str, Callable[[], Iterable[Metric]]]] = [
    ("database", _queues),
    ("presence", _agents),
    ("celery", _celery),
]
