"""The process-local Redis breaker (talia.redis_client): open for a cooldown after a Redis outage error,
one probe after it, closed by a success; and the optional Redis work it skips while open.

The real-path tests reach the session's real Redis through a FaultProxy (talia.testing.faults), so a
hung Redis is a real hung socket, not a mock.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import kombu.exceptions
import pytest
import redis
from asgiref.sync import async_to_sync

from channels_web import ratelimit
from conversations import realtime
from conversations.waiting import wait_for_reply
from talia.redis_client import RedisBreaker, breaker, cooldown_s, get_redis
from talia.testing.faults import FaultProxy


@pytest.fixture
def short_cooldown(settings: Any) -> float:
    settings.TALIA_REDIS_TIMEOUT_S = 0.5
    return cooldown_s()


@pytest.mark.parametrize(
    "error",
    [
        redis.TimeoutError("Timeout reading from socket"),
        redis.ConnectionError("Connection refused"),
        kombu.exceptions.OperationalError("Error 111 connecting"),
        TimeoutError(),
    ],
)
def test_an_outage_error_opens_it_for_the_cooldown_then_one_probe_goes_and_a_success_closes_it(
    short_cooldown, caplog, error
):
    tested = RedisBreaker()
    assert not tested.is_open()

    with caplog.at_level(logging.INFO, logger="talia.redis_client"):
        assert tested.record_failure(error, "rate limit")
        assert tested.record_failure(error, "realtime push")  # the same outage: no second warning
        assert tested.is_open() and tested.is_open()

        time.sleep(short_cooldown + 0.2)
        assert not tested.is_open()  # the probe
        assert tested.is_open()  # everyone else waits for its outcome
        tested.record_success()
        assert not tested.is_open() and not tested.is_open()

    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "rate limit" in warnings[0].getMessage()
    assert any("answers again" in record.getMessage() for record in caplog.records)


def test_a_failed_probe_opens_it_for_another_cooldown(short_cooldown):
    tested = RedisBreaker()
    tested.record_failure(redis.TimeoutError(), "rate limit")
    time.sleep(short_cooldown + 0.2)
    assert not tested.is_open()  # the probe goes...
    tested.record_failure(redis.TimeoutError(), "rate limit")  # ...and fails
    assert tested.is_open()


def test_errors_that_are_not_an_outage_leave_it_closed():
    tested = RedisBreaker()
    assert not tested.record_failure(redis.ResponseError("WRONGTYPE"), "rate limit")
    assert not tested.record_failure(ValueError("bad"), "rate limit")
    assert not tested.is_open()


def test_the_cooldown_follows_the_redis_timeout(settings):
    settings.TALIA_REDIS_TIMEOUT_S = 0.5
    assert cooldown_s() == 3.0
    settings.TALIA_REDIS_TIMEOUT_S = 5.0
    assert cooldown_s() == 10.0


@pytest.fixture
def hung_redis(settings: Any) -> Iterator[FaultProxy]:
    """This process's own Redis commands go through a proxy the test can hang."""
    socket_path = settings.REDIS_URL.removeprefix("unix://").split("?")[0]
    with FaultProxy(unix_path=socket_path) as proxy:
        settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/0"
        settings.TALIA_REDIS_TIMEOUT_S = 0.5
        yield proxy
        proxy.forward()


def test_a_hung_redis_trips_it_and_rate_limits_then_skip_redis_until_a_probe_succeeds(hung_redis, settings):
    limit = (100, 60)

    def counted(key: str) -> int:
        names = get_redis().keys(f"{settings.REDIS_PREFIX}:rate:ip:{key}:*")
        return int(get_redis().get(names[0]) or 0) if names else 0

    before, during = "breaker-" + secrets.token_hex(4), "breaker-" + secrets.token_hex(4)
    assert ratelimit.hit("ip", before, limit) is None
    assert counted(before) == 1

    hung_redis.hang()
    assert ratelimit.hit("ip", before, limit) is None  # timed out once: fails open
    assert breaker.is_open()

    hung_redis.forward()  # (the hung command may now reach Redis late: hence a key of its own below)
    assert ratelimit.hit("ip", during, limit) is None
    assert counted(during) == 0  # skipped: Redis was not asked

    time.sleep(cooldown_s() + 0.2)
    assert ratelimit.hit("ip", during, limit) is None  # the probe
    assert counted(during) == 1
    assert not breaker.is_open()


def test_while_open_a_realtime_push_is_dropped_and_after_a_success_it_goes_again(listen, caplog):
    group = "breaker-" + secrets.token_hex(4)
    listener = listen(group)
    event: Any = {"type": "typing", "conversation_id": group, "sender": "agent", "active": True}

    breaker.record_failure(redis.TimeoutError(), "test")
    with caplog.at_level(logging.INFO, logger="conversations.realtime"):
        realtime._publisher.send([group], event)
    assert listener.receive(timeout=1.0) is None
    assert "dropped" in caplog.text

    breaker.record_success()
    realtime._publisher.send([group], event)
    assert listener.receive(timeout=5.0) == event


@pytest.mark.django_db(transaction=True)
def test_while_open_the_reply_wait_asks_the_database_only():
    """With Redis answering but the breaker open, no subscription is made: no reply stored means None now,
    not after the whole wait (which a subscribed wait would sit through, no push ever coming)."""
    breaker.record_failure(redis.TimeoutError(), "test")
    wait_s = 30.0

    started = time.monotonic()
    reply = async_to_sync(wait_for_reply)("00000000-0000-0000-0000-000000000000", "breaker-wait", 0, wait_s)

    assert reply is None
    assert time.monotonic() - started < wait_s / 2
