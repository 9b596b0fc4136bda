import pytest
from django.conf import settings

from talia.redis_client import get_redis
from talia.testing.fake_smtp import smtp_server  # noqa: F401 (a fixture: a real SMTP server on localhost)


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit windows live in Redis for a minute; each test starts with none spent."""
    redis = get_redis()
    for key in redis.scan_iter(match=f"{settings.REDIS_PREFIX}:rate:*", count=500):
        redis.delete(key)
