from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from talia.integrations.tests.receiver import Receiver
from talia.redis_client import get_redis


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def stream(settings: Any) -> Iterator[str]:
    """A Redis stream of this test's own, as the Redis Streams sink's target."""
    name = f"{settings.REDIS_PREFIX}:events:{secrets.token_hex(4)}"
    settings.TALIA_EVENTS_REDIS_STREAM = name
    yield name
    get_redis().delete(name)


@pytest.fixture
def no_stream(settings: Any) -> None:
    settings.TALIA_EVENTS_REDIS_STREAM = ""
