"""Browser tests: a real Daphne on the test database, a real Celery worker and Debian's Chromium.

    def test_admin_login(live_system, page):
        page.goto(f"{live_system.url}/admin/login/")
        ...

Fixtures:
- `static_files` (session): `collectstatic` into the session's STATIC_ROOT, once. With DEBUG off,
  whitenoise serves only collected files, exactly as in production.
- `daphne_server` (function): Daphne as `make run` starts it (`python -m talia.runtime.web`, access log
  masked) serving talia.asgi in a child process on a free 127.0.0.1 port, against the database pytest-django created (it requests `transactional_db`, so what the test
  writes with the ORM is committed and the server sees it, and the other way round) and the session's
  Redis namespace. Not called `live_server`: pytest-django owns that name and wraps it in an autouse
  helper that expects its own server.
- `live_system` (function): `daphne_server` plus the real Celery worker (the `celery_worker` fixture
  from talia.testing.plugin, a thread of this process), so what the server enqueues gets done.
- `browser` (function): Debian's /usr/bin/chromium driven by Playwright (never a downloaded browser),
  launched once per session and lent to one test at a time.
- `page` (function): a fresh context and page per test; `browser_context_args` (override it in a test
  module) says how the context is made. When the test fails, a screenshot is saved and its path printed.

Playwright's sync API keeps its event loop marked as this thread's running loop between calls, and
Django refuses ORM calls in a thread with a running loop (SynchronousOnlyOperation). So while a test
holds `browser`, DJANGO_ALLOW_ASYNC_UNSAFE is set and the ORM works in the test; async_to_sync, the
`listen` fixture and asyncio.run() do not (they refuse to start a loop inside a "running" one): in a
browser test, drive the system through the page. The mark is removed after each browser test, so the
rest of the session (async tests included) is unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from talia.env import BASE_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT_S = 30
SERVER_STOP_TIMEOUT_S = 10
WORKER_VISIBLE_TIMEOUT_S = 15
PAGE_TIMEOUT_MS = 15_000
LOG_TAIL_CHARS = 8_000

_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


# --- Test outcome, for failure-only output ---------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember the call phase's report, so fixtures can tell in teardown whether the test failed."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


def _test_failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test failed; also True when it is unknown (the hook above is not registered)."""
    report = request.node.stash.get(_CALL_REPORT, None)
    return report is None or report.failed


# --- The server ------------------------------------------------------------------------------------


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL for the database a Django connection uses (HOST may be a unix socket directory)."""
    user = quote(str(settings_dict.get("USER") or ""), safe="")
    password = str(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    netloc = quote(str(settings_dict.get("HOST") or ""), safe="")
    if settings_dict.get("PORT"):
        netloc += f":{settings_dict['PORT']}"
    if auth:
        netloc = f"{auth}@{netloc}"
    url = f"postgres://{netloc}/{quote(str(settings_dict['NAME']), safe='')}"
    options = {
        key: value for key, value in (settings_dict.get("OPTIONS") or {}).items() if isinstance(value, str | int)
    }
    return f"{url}?{urlencode(options)}" if options else url


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    """Status and body of a GET, error statuses included; raises OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  (our own http:// URL)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class LiveServer:
    """A running Daphne: `url` has no trailing slash; `log()` is its output so far."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text if len(text) <= LOG_TAIL_CHARS else "[...]\n" + text[-LOG_TAIL_CHARS:]

    def health(self) -> dict[str, Any]:
        """GET /health as JSON (any status); raises OSError when nothing answers."""
        _, body = http_get(f"{self.url}/health")
        return dict(json.loads(body))

    def wait_until(self, predicate: Callable[[], Any], what: str, timeout: float) -> Any:
        """Poll `predicate` until truthy; fail with the server's output if the server dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"daphne exited with status {self.process.returncode} while waiting for {what}:\n{self.log()}"
                )
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"daphne: {what} not within {timeout:.0f}s:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_env(settings: Any, settings_dict: Mapping[str, Any]) -> dict[str, str]:
    """This process's environment, pointed at the test database and this process's current settings."""
    env = dict(os.environ)
    # DJANGO_ALLOW_ASYNC_UNSAFE: set in this process during browser tests, never for the server under test.
    # TALIA_DATABASE_POOL: off in the test process only (talia.testing.plugin); servers run as deployed.
    for name in (
        "DJANGO_ALLOW_ASYNC_UNSAFE",
        "OPENAI_API_KEY",
        "TALIA_OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "TALIA_DATABASE_POOL",
    ):
        env.pop(name, None)
    env.update(
        DATABASE_URL=database_url(settings_dict),
        REDIS_URL=settings.REDIS_URL,
        TALIA_REDIS_PREFIX=settings.REDIS_PREFIX,
        SECRET_KEY=settings.SECRET_KEY,
        TALIA_LLM_ENGINE=settings.TALIA_LLM_ENGINE,
        DEBUG="false",
        # Secure cookies stay on, as in production: Chromium accepts them from http://127.0.0.1.
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    if settings.OPENAI_API_KEY:  # the `model_engine` fixture points the settings at the fake OpenAI server
        env["OPENAI_API_KEY"] = settings.OPENAI_API_KEY
    if settings.OPENAI_BASE_URL:
        env["OPENAI_BASE_URL"] = settings.OPENAI_BASE_URL
    return env


@pytest.fixture(scope="session")
def static_files() -> Path:
    """Collect the static files into STATIC_ROOT (the session's scratch dir), once per session."""
    from django.conf import settings
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    return Path(settings.STATIC_ROOT)


@pytest.fixture
def daphne_debug() -> bool:
    """Whether the Daphne under test runs with DEBUG on (off, as in production); a test module that needs
    a DEBUG-only page (the dev phone) overrides this fixture to return True."""
    return False


@pytest.fixture
def daphne_server(
    transactional_db: None, static_files: Path, tmp_path: Path, request: pytest.FixtureRequest, daphne_debug: bool
) -> Iterator[LiveServer]:
    """A real Daphne serving talia.asgi on the test database; stopped (SIGTERM, then SIGKILL) afterwards."""
    from django.conf import settings
    from django.db import connection

    port = free_port()
    log_path = tmp_path / "daphne.log"
    env = server_env(settings, connection.settings_dict)
    if daphne_debug:
        env["DEBUG"] = "true"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            # As `make run` starts it: Daphne with its access log masked.
            [sys.executable, "-m", "talia.runtime.web", "-b", "127.0.0.1", "-p", str(port), "talia.asgi:application"],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:

        def healthy() -> bool:
            try:
                status, _ = http_get(f"{server.url}/health", timeout=2)
            except OSError:
                return False  # not listening yet
            return status == 200

        server.wait_until(healthy, "GET /health answering 200", SERVER_START_TIMEOUT_S)
        yield server
    finally:
        server.stop()
        if _test_failed(request):
            print(f"--- daphne output ({log_path}) ---\n{server.log()}")


@pytest.fixture
def live_system(daphne_server: LiveServer, celery_worker: Any) -> LiveServer:
    """`daphne_server` plus a real Celery worker on the same database and Redis; /health says all is ok."""

    def all_ok() -> bool:
        try:
            return set(daphne_server.health().values()) == {"ok"}
        except (OSError, ValueError):
            return False

    daphne_server.wait_until(all_ok, "GET /health reporting the worker", WORKER_VISIBLE_TIMEOUT_S)
    return daphne_server


# --- The browser -----------------------------------------------------------------------------------


@dataclass
class _Chromium:
    browser: Any
    loop: asyncio.AbstractEventLoop  # Playwright's event loop, run by its dispatcher greenlet


@pytest.fixture(scope="session")
def _chromium() -> Iterator[_Chromium]:
    """One headless Debian Chromium per session, driven by Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except BaseException:
        playwright.stop()
        raise
    # Playwright left its loop marked as this thread's running loop; see `browser` for why it goes.
    loop = asyncio.get_running_loop()
    asyncio._set_running_loop(None)
    yield _Chromium(chromium, loop)
    asyncio._set_running_loop(loop)
    try:
        chromium.close()
    finally:
        playwright.stop()  # ends the loop, which also clears the mark


@pytest.fixture
def browser(_chromium: _Chromium) -> Iterator[Any]:
    """The session's Chromium (a playwright.sync_api.Browser), for the length of one test.

    Playwright's sync API needs its event loop marked as this thread's running loop whenever the test
    calls it, and it leaves the mark there between calls. Django refuses ORM calls in a thread with a
    running loop (SynchronousOnlyOperation), so a browser test runs with DJANGO_ALLOW_ASYNC_UNSAFE set
    (the server under test runs in Daphne, another process, where the check stays on). The mark and
    the variable last only as long as this fixture: other tests in the session (async ones included)
    run in an ordinary thread again.
    """
    if asyncio._get_running_loop() is not None:
        pytest.fail("The browser fixtures use Playwright's sync API: they need a sync test, not an async one")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        asyncio._set_running_loop(_chromium.loop)
        try:
            yield _chromium.browser
        finally:
            asyncio._set_running_loop(None)


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """Keyword arguments of `browser.new_context()` for `page`; override in a module for other ones."""
    return {"locale": "en-US", "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def page(
    browser: Any, browser_context_args: dict[str, Any], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A page in a fresh browser context; on failure, a screenshot and the page's errors are printed."""
    context = browser.new_context(**browser_context_args)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error":
            errors.append(f"console.error: {message.text}")

    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", console)
    try:
        yield page
    finally:
        if _test_failed(request):
            screenshot = tmp_path / "failure.png"
            with contextlib.suppress(Exception):  # a crashed page has nothing to show
                page.screenshot(path=str(screenshot), full_page=True)
                print(f"--- browser at {page.url}; screenshot: {screenshot} ---")
            print("\n".join(errors))
        context.close()
