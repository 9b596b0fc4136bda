"""`python -m talia web|worker|beat|publisher|all`: each production process role with its defaults.

- `web`: Daphne (through talia.runtime.web, access log masked) on HOST:PORT, or on the unix socket
  TALIA_WEB_SOCKET.
- `worker`: Celery, one process per queue in TALIA_WORKER_QUEUES: `turns` (assistant turns, sweeps),
  `deliveries` (outgoing messages, transcripts), `ingest` (crawling, media, recordings) and `analysis`,
  each with its own TALIA_<QUEUE>_CONCURRENCY. A queue of its own per kind of work is what keeps one from
  starving another (routes: CELERY_TASK_ROUTES in settings); a host may run only some of them.
- `beat`: Celery beat (run exactly one in a deployment).
- `publisher`: the event outbox publisher (`manage.py publish_events`, talia/integrations/publisher.py),
  which hands recorded events to webhooks, Redis Streams and the other sinks. One is enough; more are safe
  (events are claimed with SKIP LOCKED and each sink is delivered to by one publisher at a time).
- `all`: web, the workers, beat and the publisher on one small host.

A role that is one process replaces this one (exec), so signals reach Daphne or Celery directly. Several
processes (`all`, or `worker` with several queues) run as children of a small supervisor that stops them all
on SIGINT/SIGTERM and exits when any of them dies. Nothing here starts embedded servers or migrates: the
settings are loaded first, so a missing DATABASE_URL or REDIS_URL stops the role at once, naming it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from talia import observability
from talia.env import BASE_DIR

ROLES = ("web", "worker", "beat", "publisher", "all")
USAGE = "usage: python -m talia {web|worker|beat|publisher|all}"


def web_command() -> list[str]:
    from django.conf import settings

    listen = (
        ["-u", settings.TALIA_WEB_SOCKET]
        if settings.TALIA_WEB_SOCKET
        else ["-b", settings.WEB_HOST, "-p", str(settings.WEB_PORT)]
    )
    return [sys.executable, "-m", "talia.runtime.web", *listen, "talia.asgi:application"]


def worker_commands() -> dict[str, list[str]]:
    """One Celery worker per configured queue, by child name (`worker-turns`, `worker-ingest`, ...)."""
    from django.conf import settings

    commands = {}
    for kind in settings.TALIA_WORKER_QUEUES:
        queue = settings.TALIA_QUEUES[kind]
        concurrency = settings.TALIA_WORKER_CONCURRENCY_BY_QUEUE[kind]
        command = [sys.executable, "-m", "celery", "-A", "talia", "worker", "-l", settings.LOG_LEVEL, "-Q", queue]
        command += ["-n", f"{queue}@{settings.TALIA_WORKER_NAME}"]
        if concurrency:
            command += ["-c", str(concurrency)]
        commands[f"worker-{kind}"] = command
    return commands


def beat_command() -> list[str]:
    from django.conf import settings

    schedule = settings.VAR_DIR / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "celery", "-A", "talia", "beat", "-l", settings.LOG_LEVEL, "-s", str(schedule)]


def publisher_command() -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), "publish_events"]


def commands_for(role: str) -> dict[str, list[str]]:
    if role == "web":
        return {"web": web_command()}
    if role == "worker":
        return worker_commands()
    if role == "beat":
        return {"beat": beat_command()}
    if role == "publisher":
        return {"publisher": publisher_command()}
    return {"web": web_command(), **worker_commands(), "beat": beat_command(), "publisher": publisher_command()}


def supervise(commands: dict[str, list[str]]) -> int:
    """Run the commands as children until a signal or until one exits; then stop the rest."""
    from talia.runtime.supervisor import Child, stop_all, watch

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    children = [Child(name, command) for name, command in commands.items()]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        for child in children:
            child.start(env)
        return watch(children, stop)
    finally:
        stop_all(children)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ROLES:
        print(USAGE, file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "talia.settings")
    os.chdir(BASE_DIR)
    commands = commands_for(argv[0])
    observability.prepare_metrics_env(argv[0])  # one metrics directory per role (docs/deploy.md)
    if len(commands) == 1:
        (command,) = commands.values()
        os.execv(command[0], command)  # noqa: S606  (our own interpreter, fixed arguments)
    return supervise(commands)
