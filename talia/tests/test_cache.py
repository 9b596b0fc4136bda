"""The cache backend (talia/cache.py): Django's Redis cache, with one client per pool reused."""

from __future__ import annotations

from typing import Any

from django.core.cache import caches

from talia.cache import RedisCache


def test_the_configured_cache_reuses_one_client_and_still_reads_what_it_wrote():
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    backend: Any = cache._cache  # type: ignore[attr-defined]  # Django's client behind the cache
    cache.set("talia-cache-test", {"a": 1}, 30)
    assert cache.get("talia-cache-test") == {"a": 1}
    client = backend.get_client()
    assert backend.get_client(write=True) is client  # one server: reads and writes share its pool
    cache.delete("talia-cache-test")
    assert cache.get("talia-cache-test") is None
    assert backend.get_client() is client
