"""`manage.py publish_events`: the outbox publisher as a long-running process (the `publisher` role).

Runs passes (talia/integrations/publisher.py) every TALIA_EVENTS_POLL_S while idle, back to back while
there is work; stops cleanly on SIGTERM or SIGINT after the pass in progress, closes the sinks and logs
a summary. With TALIA_EVENTS_ENABLED off it publishes nothing and waits for the stop signal (so a
supervisor running it does not see it exit). `--once` runs a single pass.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from talia.integrations import publisher

logger = logging.getLogger("talia.integrations.publisher")


class Command(BaseCommand):
    help = "Publish recorded events to the enabled sinks (webhooks, Redis Streams, ...) until stopped."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")
        parser.add_argument("--batch-size", type=int, default=None, help="Events per pass and sink.")

    def handle(self, *args: Any, once: bool = False, batch_size: int | None = None, **options: Any) -> None:
        stop = threading.Event()
        if not once:
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
        if not settings.TALIA_EVENTS_ENABLED:
            logger.info("Event publishing is off (TALIA_EVENTS_ENABLED=false); waiting to be stopped")
            if not once:
                stop.wait()
            return
        poll = float(settings.TALIA_EVENTS_POLL_S)
        total = publisher.PassResult()
        logger.info("Publishing events every %.2fs", poll)
        while not stop.is_set():
            try:
                result = publisher.run_pass(batch_size=batch_size)
            except Exception:
                logger.exception("Publishing pass failed; retrying in %.2fs", poll)
                close_old_connections()
                if once:
                    raise
                stop.wait(poll)
                continue
            total.add(result)
            total.sinks = result.sinks
            if once:
                break
            if not result.more:
                close_old_connections()
                stop.wait(poll)
        for sink in total.sinks:
            try:
                sink.close()
            except Exception:
                logger.exception("Closing the sink %s failed", sink.key)
        logger.info(
            "Publisher stopped: %d events claimed, %d deliveries made, %d failed, %d dead",
            total.claimed,
            total.delivered,
            total.failed,
            total.dead,
        )
