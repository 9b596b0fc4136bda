"""Benchmarks: how fast the hot paths are on the real stack. Never run by the tests (tests do not time).

    .venv/bin/python bench/run.py                 # every benchmark
    .venv/bin/python bench/run.py retrieval -n 200

Each run uses a throwaway embedded Postgres and Redis under var/bench/ (or DATABASE_URL / REDIS_URL when
set: point them at a scratch database, the benchmarks write to it) and prints p50 / p95 / max in ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(label: str, runs: int, action: Callable[[int], object]) -> None:
    """Run `action(i)` `runs` times and print the latency distribution."""
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(
        f"{label:<44} n={runs:<5} p50={statistics.median(samples):7.2f} ms  p95={p95:7.2f} ms  "
        f"max={samples[-1]:7.2f} ms"
    )


def bench_inbox(runs: int) -> None:
    """A visitor's message stored (contact, conversation, message, pending run) and answered offline."""
    from conversations import inbox, turns

    run = f"{int(time.time())}"  # fresh visitors on every run
    timed("inbox.receive (new visitor)", runs, lambda i: inbox.receive("web", f"bench-{run}-new-{i:06d}", "Hola"))
    timed("inbox.receive (same conversation)", runs, lambda i: inbox.receive("web", f"bench-{run}-one", f"m{i}"))

    def turn(i: int) -> None:
        received = inbox.receive("web", f"bench-{run}-turn-{i:06d}", "¿Cuánto cuesta una limpieza?")
        turns.run_turn(received.message.pk)

    timed("receive + offline assistant turn", runs, turn)


def bench_retrieval(runs: int) -> None:
    """search() over the demo site, full text (and vectors when an embedding provider is configured)."""
    from django.test import Client, override_settings

    from rag import ingest, retrieval
    from rag.demo_site import PAGES
    from rag.models import Document, KnowledgeSource
    from rag.tests.questions import QUESTIONS
    from rag.tests.site import Response, serve_site

    KnowledgeSource.objects.all().delete()  # the benchmark's own database: start from an empty knowledge base
    client = Client()
    routes = {}
    for path in ["/demo-site/sitemap.xml", *(f"/demo-site/{page}" for page in PAGES)]:
        response = client.get(path, HTTP_HOST="localhost")
        body = response.content.decode().replace("http://localhost", "{site}")
        routes[path] = Response(content_type=response["Content-Type"], body=body)
    # The local copy of the site is on loopback, which the crawler reads only when allowed to.
    with serve_site(routes) as site, override_settings(TALIA_CRAWL_ALLOW_HOSTS=[site.host]):
        start = time.perf_counter()
        job = ingest.start_ingest(site.url("/demo-site/"), enqueue=False)
        ingest.run_ingest(str(job.pk))
        print(f"{'ingest of the demo site (16 pages)':<44} {(time.perf_counter() - start) * 1000:7.0f} ms")
    print(f"{'documents indexed':<44} {Document.objects.count()}")
    timed("retrieval.search (hybrid)", runs, lambda i: retrieval.search(QUESTIONS[i % len(QUESTIONS)][0]))


BENCHMARKS = {"inbox": bench_inbox, "retrieval": bench_retrieval}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="which benchmarks (default: all)")
    parser.add_argument("-n", "--runs", type=int, default=100, help="iterations per measurement")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "talia.settings")
    os.environ.setdefault("TALIA_VAR_DIR", str(ROOT / "var" / "bench"))
    os.environ.setdefault("TALIA_LLM_ENGINE", "offline")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    from talia.runtime.embedded import bootstrap

    bootstrap()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    for name in args.names or list(BENCHMARKS):
        BENCHMARKS[name](args.runs)


if __name__ == "__main__":
    main()
