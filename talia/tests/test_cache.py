"""The cache backend (talia/cache.py): Django's Redis cache, with one client per pool reused."""

from __future__ import annotations

from django.core.cache import caches

from talia.cache import RedisCache


def test_the_configured_cache_reuses_one_client_and_still_reads_what_it_wrote():
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    cache.set("talia-cache-test", {"a": 1}, 30)
    assert cache.get("talia-cache-test") == {"a": 1}
    client = cache._cache.get_client()
    assert cache._cache.get_client(write=True) is client  # one server: reads and writes share its pool
    cache.delete("talia-cache-test")
    assert cache.get("talia-cache-test") is None
    assert cache._cache.get_client() is client
