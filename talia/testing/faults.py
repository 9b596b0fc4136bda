"""A TCP proxy a test can make hang or refuse: Redis or Postgres failing the way they fail in production.

    with FaultProxy(unix_path="/tmp/redis.sock") as proxy:   # or target=("127.0.0.1", 5432)
        url = f"redis://127.0.0.1:{proxy.port}/0"
        proxy.hang()      # connections stay open and accepted, no byte moves: a peer that stopped answering
        proxy.refuse()    # every connection is closed at once: a peer that is down
        proxy.forward()   # back to normal

A hung peer is the dangerous one: the TCP connection is accepted and nothing ever comes back, so only
socket timeouts end the wait. SIGSTOP on a shared server would do the same but freezes every other user
of it; the proxy freezes only the process under test.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Literal

Mode = Literal["forward", "hang", "refuse"]


class FaultProxy:
    def __init__(self, *, target: tuple[str, int] | None = None, unix_path: str | None = None) -> None:
        if (target is None) == (unix_path is None):
            raise ValueError("Give either target=(host, port) or unix_path.")
        self.target = target
        self.unix_path = unix_path
        self.mode: Mode = "forward"
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    # --- control ------------------------------------------------------------------------------------

    def forward(self) -> None:
        """Pass bytes again. Connections opened while hung were never linked to the target: drop them."""
        with self._lock:
            self.mode = "forward"
            stale = [pair for pair in self._pairs if pair[1] is None]
        for pair in stale:
            self._drop(pair)

    def hang(self) -> None:
        """Keep every connection open and accept new ones, but move no byte either way."""
        with self._lock:
            self.mode = "hang"

    def refuse(self) -> None:
        """Close every connection now and each new one at once, as a stopped server's host would."""
        with self._lock:
            self.mode = "refuse"
            pairs = list(self._pairs)
        for pair in pairs:
            self._drop(pair)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            self._drop(pair)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------------------------------

    def _connect_target(self) -> socket.socket:
        if self.unix_path is not None:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.unix_path)
        else:
            assert self.target is not None
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        return upstream

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self.mode
            if mode == "refuse":
                client.close()
                continue
            upstream = None
            if mode == "forward":
                try:
                    upstream = self._connect_target()
                except OSError:
                    client.close()
                    continue
            pair = (client, upstream)
            with self._lock:
                self._pairs.append(pair)
            if upstream is not None:
                threading.Thread(target=self._pump, args=(pair,), name="fault-proxy-pump", daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket | None]) -> None:
        client, upstream = pair
        assert upstream is not None
        peers = {client: upstream, upstream: client}
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                with self._lock:
                    mode = self.mode
                if mode != "forward":
                    if mode == "refuse":
                        return
                    # Hung: leave the bytes unread on both sides (and do not spin on them).
                    self._closed.wait(0.1)
                    continue
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):  # ValueError: select() on a socket another thread just closed
            return
        finally:
            self._drop(pair)

    def _drop(self, pair: tuple[socket.socket, socket.socket | None]) -> None:
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
        for sock in pair:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


@contextlib.contextmanager
def database_unreachable() -> Iterator[None]:
    """Point this process's default database connection at a socket directory where no server listens:
    a stopped Postgres, for the code under test in this process (a live server needs a FaultProxy).
    The process's connection pool, if any, is closed on the way in and out: it holds connections to the
    real server and would be rebuilt for the new address only once closed."""
    from django.db import connection

    from talia.database import reconnect

    original = connection.settings_dict["HOST"]
    reconnect()
    connection.settings_dict["HOST"] = "/nonexistent-talia-socket-dir"
    try:
        yield
    finally:
        reconnect()
        connection.settings_dict["HOST"] = original
