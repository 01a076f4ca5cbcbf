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


def rate_hit(*, key: str, limit: int, window_seconds: int) -> RateDecision:
    """Count one hit for `key` in the current window and say whether it is within `limit`."""
    window = int(time.time() // window_seconds)
    cache_key = f"rl:{key}:{window}"
    if cache.add(cache_key, 1, timeout=window_seconds + 1):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=window_seconds + 1)
            count = 1
    retry_after = max(1, int((window + 1) * window_seconds - time.time()))
    return RateDecision(allowed=count <= limit, count=count, limit=limit, retry_after=retry_after)
