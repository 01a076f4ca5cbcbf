"""Fixed-window counters in the cache (Redis in production), shared by every process."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    retry_after: int


# INCR, and the time to live when it created the key: atomic, one round trip, one command.
_COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
_count_script = None


def _redis_client():
    """The raw client behind django-redis, or None for another cache backend (local memory in `make run`)."""
    client = getattr(cache, "client", None)
    get_client = getattr(client, "get_client", None)
    return get_client(write=True) if get_client else None


def window_count(*, key: str, timeout: int) -> int:
    """Add one to the counter `key` (created with `timeout` seconds to live) and return its new value.

    On Redis this is one command (a small Lua script: INCR, then EXPIRE when it created the key). The counter is
    a plain integer, as django-redis stores integers, so `cache.get` / `cache.decr` read it as usual. Elsewhere,
    cache.add then cache.incr. Measured per call (one client, local Redis): 110–180 µs of CPU for the script,
    against 250–290 µs for cache.add + cache.incr on a key that exists (two round trips) and 130–150 µs for
    either on a new key. A pipelined SET NX + INCR cost 150–250 µs: redis-py's pipeline is not cheap.
    """
    global _count_script
    redis = _redis_client()
    if redis is not None:
        if _count_script is None:
            _count_script = redis.register_script(_COUNT_SCRIPT)
        return int(_count_script(keys=[cache.make_key(key)], args=[timeout], client=redis))
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def rate_hit(*, key: str, limit: int, window_seconds: int) -> RateDecision:
    """Count one hit for `key` in the current window and say whether it is within `limit`."""
    window = int(time.time() // window_seconds)
    count = window_count(key=f"rl:{key}:{window}", timeout=window_seconds + 1)
    retry_after = max(1, int((window + 1) * window_seconds - time.time()))
    return RateDecision(allowed=count <= limit, count=count, limit=limit, retry_after=retry_after)
