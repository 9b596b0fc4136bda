"""Django's Redis cache with one redis-py client per connection pool, not one per operation.

Django's RedisCacheClient builds a new `redis.Redis` around its pool for every get or set; with redis-py 8
that constructor (its option handling and response-callback table) cost about as much Python as the
command itself, on every profile read of every assistant turn. The client is a thin, thread-safe facade
over the pool (which checks the process id itself, so a forked worker child still opens its own
connections), so one per pool is kept and reused. Everything else is Django's.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        django_client: Any = self  # Django's private helpers, which django-stubs do not declare
        index = django_client._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = django_client._get_connection_pool(write)
            client = self._clients[index] = django_client._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
