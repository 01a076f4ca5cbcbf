"""Fixed log-scale latency buckets: percentiles read from histograms are within one bucket of the truth."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

# Upper bounds (exclusive) in milliseconds; bucket i holds [bound[i-1], bound[i]), the last one ≥ 60 s.
# Roughly 1-1.5-2-3-5-7 per decade: at most ~50 % relative error, typically far less after interpolation.
LATENCY_BUCKET_BOUNDS_MS: tuple[int, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700,
    1000, 1500, 2000, 3000, 5000, 7000, 10000, 15000, 20000, 30000, 60000,
)  # fmt: skip
LATENCY_BUCKETS = len(LATENCY_BUCKET_BOUNDS_MS) + 1


def latency_bucket(ms: int) -> int:
    """The index of the bucket that holds `ms`."""
    return bisect_right(LATENCY_BUCKET_BOUNDS_MS, ms)


def latency_bucket_range(index: int) -> tuple[int, int | None]:
    """[low, high) of bucket `index` in ms; high is None for the open last bucket."""
    low = 0 if index == 0 else LATENCY_BUCKET_BOUNDS_MS[index - 1]
    high = LATENCY_BUCKET_BOUNDS_MS[index] if index < len(LATENCY_BUCKET_BOUNDS_MS) else None
    return low, high


def histogram_empty() -> list[int]:
    return [0] * LATENCY_BUCKETS


def histogram_add(target: list[int], other: Sequence[int]) -> None:
    for i, value in enumerate(other):
        target[i] += value


def histogram_percentile(histogram: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) estimated from a histogram, interpolating linearly inside its bucket.

    None for an empty histogram. Values in the open last bucket are reported as its lower bound.
    """
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low, high = latency_bucket_range(index)
            if high is None:
                return float(low)
            return round(low + (high - low) * max(0.0, rank - seen) / count, 1)
        seen += count
    return float(latency_bucket_range(len(histogram) - 1)[0])
