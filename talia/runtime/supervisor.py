"""`make run`: start the whole system in one terminal and stop all of it on Ctrl-C.

Attaches to the embedded servers (or the ones DATABASE_URL / REDIS_URL name), migrates, seeds the demo,
then runs Daphne, the Celery workers, Celery beat and the event publisher as children, each through the
production entry point (`python -m talia web|worker|beat|publisher`, talia/runtime/roles.py). Each child's output is echoed with a
prefix. One worker takes turns and deliveries (the default queue), the other crawling and analysis (the
bulk queue), so a slow site never holds up a reply. The crawler may read TalIA's own address (the demo
site) through TALIA_CRAWL_ALLOW_HOSTS; every other non-public address stays refused. SIGINT or SIGTERM stops the children (politely, then firmly) and then the embedded servers; if a
child dies on its own, everything is stopped and the exit status says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from talia.env import BASE_DIR, env_int, var_dir
from talia.runtime.embedded import bootstrap, release
from talia.testing.fake_twilio import FakeTwilio

STOP_GRACE_S = 20
# The worker role's queues (settings.WORKER_QUEUE_KINDS), one child each so every line says which queue.
WORKER_QUEUES = ("turns", "deliveries", "ingest", "analysis")
COLOURS = {
    "web": "36",
    "worker-turns": "35",
    "worker-deliveries": "95",
    "worker-ingest": "34",
    "worker-analysis": "94",
    "beat": "33",
    "publisher": "93",
    "setup": "32",
}


@dataclass
class Child:
    name: str
    command: list[str]
    # Variables of this child only, over the environment start() is given.
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        # A session of its own: the terminal's Ctrl-C reaches only the supervisor, which then stops
        # children in order instead of all of them dying at once mid-request.
        self.process = subprocess.Popen(
            self.command,
            cwd=BASE_DIR,
            env={**env, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.pump = threading.Thread(target=self._echo, daemon=True)
        self.pump.start()

    def _echo(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            say(self.name, line.rstrip("\n"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            say("setup", f"{self.name} did not stop in {timeout:.0f}s; killing it")
            self.process.kill()
            self.process.wait()
        if self.pump is not None:
            self.pump.join(timeout=2)


_print_lock = threading.Lock()


def watch(children: list[Child], stop: threading.Event) -> int:
    """Wait until `stop` is set (0) or one of the children exits (1, said)."""
    while not stop.wait(0.5):
        dead = [c for c in children if c.process is not None and c.process.poll() is not None]
        if dead:
            say("setup", f"{dead[0].name} exited with status {dead[0].process.returncode}; stopping")  # type: ignore[union-attr]
            return 1
    return 0


def stop_all(children: list[Child]) -> None:
    """Stop the children, the last started first, and give each STOP_GRACE_S to finish."""
    for child in reversed(children):
        child.stop()
    for child in reversed(children):
        child.wait(STOP_GRACE_S)


def say(prefix: str, line: str) -> None:
    tag = f"{prefix:>11} |"
    if sys.stdout.isatty():
        tag = f"\033[{COLOURS.get(prefix, '0')}m{tag}\033[0m"
    with _print_lock:
        print(f"{tag} {line}", flush=True)


def run_step(name: str, args: list[str], env: dict[str, str]) -> None:
    child = Child(name, [sys.executable, "manage.py", *args])
    child.start(env)
    assert child.process is not None
    code = child.process.wait()
    child.wait(5)
    if code != 0:
        raise SystemExit(f"`manage.py {' '.join(args)}` failed with exit status {code}")


def wait_until_serving(url: str, child: Child, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process is not None and child.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310  (our own http:// URL)
                return True
        except urllib.error.HTTPError:
            return True  # it answered; /health says 503 while the worker warms up
        except OSError:
            time.sleep(0.3)
    return False


def start_fake_twilio(env: dict[str, str], port: int) -> FakeTwilio | None:
    """Without Twilio credentials, WhatsApp runs against a local fake Twilio (the tests' own) that the
    dev phone (/dev/phone/) reads replies from; it reports delivery statuses back to this TalIA."""
    if env.get("TALIA_TWILIO_ACCOUNT_SID"):
        return None
    fake = FakeTwilio(callbacks=True).start()
    env.update(
        TALIA_TWILIO_API_BASE=fake.base_url,
        TALIA_TWILIO_ACCOUNT_SID=fake.account_sid,
        TALIA_TWILIO_AUTH_TOKEN=fake.auth_token,
        TALIA_TWILIO_WHATSAPP_FROM="whatsapp:+14155238886",
    )
    env.setdefault("TALIA_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    say("setup", f"no Twilio credentials: WhatsApp goes to a local fake Twilio at {fake.base_url}")
    return fake


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    port = env_int("PORT", 8000, minimum=1, maximum=65535)
    # `make run` is the development runner, whichever data stores it uses.
    os.environ.setdefault("DEBUG", "true")
    say("setup", "starting data stores (embedded unless DATABASE_URL / REDIS_URL are set)")
    bootstrap()
    (var_dir() / "static").mkdir(parents=True, exist_ok=True)  # STATIC_ROOT; whitenoise warns when missing
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The demo site is served by TalIA itself, on loopback: allow exactly that host and port.
    own_address = f"127.0.0.1:{port}"
    env["TALIA_CRAWL_ALLOW_HOSTS"] = ",".join(filter(None, [env.get("TALIA_CRAWL_ALLOW_HOSTS", ""), own_address]))
    fake_twilio = start_fake_twilio(env, port)
    # The production process roles (`python -m talia <role>`, talia/runtime/roles.py), each as a child so
    # that its output is prefixed: Daphne on loopback, one Celery worker per queue, beat, the event publisher.
    env.pop("TALIA_WEB_SOCKET", None)
    role = [sys.executable, "-m", "talia"]
    children = [
        Child("web", [*role, "web"], env={"HOST": "127.0.0.1", "PORT": str(port)}),
        *(Child(f"worker-{kind}", [*role, "worker"], env={"TALIA_WORKER_QUEUES": kind}) for kind in WORKER_QUEUES),
        Child("beat", [*role, "beat"]),
        Child("publisher", [*role, "publisher"]),
    ]
    exit_code = 0
    try:
        run_step("setup", ["migrate", "--noinput"], env)
        run_step("setup", ["seed_demo"], env)
        for child in children:
            if stop.is_set():
                break
            child.start(env)
        base = f"http://127.0.0.1:{port}"
        if stop.is_set():
            pass
        elif not wait_until_serving(f"{base}/health", children[0]):
            say("setup", f"the web server did not answer on {base}/health; see its output above")
        else:
            # The knowledge base reads the bilingual demo site TalIA serves itself (once; the worker does it).
            run_step("setup", ["ingest_site", f"{base}/demo-site/", "--background", "--if-empty"], env)
            for line in (
                "TalIA is running. Press Ctrl-C to stop.",
                f"  demo site      {base}/",
                f"  agent console  {base}/console/",
                f"  monitor        {base}/console/monitor/",
                f"  admin          {base}/admin/",
                f"  knowledge base {base}/demo-site/ (the site the assistant answers from)",
                f"  health         {base}/health",
                *(
                    [f"  dev phone      {base}/dev/phone/ (WhatsApp through a local fake Twilio)"]
                    if fake_twilio
                    else []
                ),
                f"  dev phone call {base}/dev/phone/call/ (call TalIA without Twilio; or manage.py simulate_call)",
            ):
                say("setup", line)
        exit_code = watch(children, stop)
    finally:
        say("setup", "stopping")
        stop_all(children)
        if fake_twilio is not None:
            fake_twilio.stop()
        release()
        say("setup", "stopped")
    return exit_code
