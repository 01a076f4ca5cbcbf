"""Fixed-window counters: one Redis round trip on django-redis, add + incr on any other cache."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from apps.core.ratelimit import rate_hit, window_count


def test_on_redis_the_counter_is_a_plain_integer_the_cache_api_reads_and_it_expires():
    assert [window_count(key="wc:a", timeout=5) for _ in range(3)] == [1, 2, 3]
    # django-redis stores integers unpickled, so the cache API sees the same counter.
    assert cache.get("wc:a") == 3
    assert cache.decr("wc:a") == 2
    assert 0 < cache.ttl("wc:a") <= 5
    assert window_count(key="wc:b", timeout=5) == 1


@pytest.fixture
def local_memory_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"}}
    yield
    cache.clear()


def test_on_another_cache_the_counter_uses_add_and_incr(local_memory_cache):
    from apps.core.ratelimit import _redis_client

    assert _redis_client() is None
    assert [window_count(key="wc:a", timeout=5) for _ in range(3)] == [1, 2, 3]
    assert cache.get("wc:a") == 3
    decisions = [rate_hit(key="contact:1", limit=2, window_seconds=60) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[-1].count == 3
