"""The statistics query: rollups for the rolled-up hours, raw Interaction rows for the rest, merged.

A range [start, end) is cut into segments (see `segments.plan`): whole UTC days read from the daily rollup when the
buckets allow it (UTC, or grouping by a dimension), hours from the hourly rollup, and raw rows for partial
hours at the edges and everything past the rollup watermark (the current hour), so answers are right
immediately and cost about the same for 1 day or 90.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import QuerySet

from ..models import LATENCY_COLUMNS, ContactDailySketch, Interaction, Route
from .hll import sketch_add, sketch_estimate, sketch_merge
from .latency import histogram_add, histogram_empty, histogram_percentile
from .query import GROUP_BY_TIME, StatisticsQuery
from .segments import ROW_COLUMNS, fetch, plan
from .services import ALL_CHANNELS, day_floor, rollup_window

TOP_ERROR_CODES = 10


@dataclass
class _Bucket:
    interactions: int = 0
    successes: int = 0
    latency_sum_ms: int = 0
    routes: Counter = field(default_factory=Counter)
    histogram: list[int] = field(default_factory=histogram_empty)
    delivery: Counter = field(default_factory=Counter)


def interactions_filter(*, query: StatisticsQuery) -> QuerySet[Interaction]:
    """Interactions in [start, end) matching the filters, newest first, with contact / message / reply."""
    return (
        Interaction.objects.filter(query.filters(), created_at__gte=query.start, created_at__lt=query.end)
        .select_related("contact", "message", "reply")
        .order_by("-created_at", "-id")
    )


def _key_value(value: Any, group_by: str) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if group_by in GROUP_BY_TIME and isinstance(value, str):
        return value[:10]  # SQLite answers dates as text
    return value or ""


_COUNTER_AT = {name: index for index, name in enumerate(ROW_COLUMNS)}
_LATENCY_SLICE = slice(_COUNTER_AT[LATENCY_COLUMNS[0]], _COUNTER_AT[LATENCY_COLUMNS[-1]] + 1)
_ROUTES_AT = [(route, _COUNTER_AT[f"route_{route}"]) for route in Route.values]


def _add_row(bucket: _Bucket, row: tuple) -> None:
    at = _COUNTER_AT
    bucket.interactions += row[at["interactions"]] or 0
    bucket.successes += row[at["successes"]] or 0
    bucket.latency_sum_ms += row[at["latency_sum_ms"]] or 0
    histogram_add(bucket.histogram, [value or 0 for value in row[_LATENCY_SLICE]])
    for route, index in _ROUTES_AT:
        if row[index]:
            bucket.routes[route] += row[index]
    for status in ("pending", "sent", "delivered", "read", "failed"):
        bucket.delivery[status] += row[at[f"replies_{status}"]] or 0
    bucket.delivery["replies"] += row[at["replies"]] or 0


def _unique_contacts(query: StatisticsQuery, segments: list[tuple[str, datetime, datetime]]) -> tuple[int, str]:
    """(count, method). HLL over daily sketches when only the channel filters; exact from raw rows otherwise."""
    rolled = [(lo, hi) for kind, lo, hi in segments if kind != "raw"]
    if query.intent or query.template or query.route or not rolled:
        exact = Interaction.objects.filter(query.filters(), created_at__gte=query.start, created_at__lt=query.end)
        return exact.values("contact_id").distinct().count(), "exact"
    first_day = day_floor(rolled[0][0]).date()
    last_day = day_floor(rolled[-1][1] - timedelta(microseconds=1)).date()
    sketches = ContactDailySketch.objects.filter(day__gte=first_day, day__lte=last_day)
    sketches = sketches.filter(channel=query.channel or ALL_CHANNELS)
    sketch = sketch_merge(sketches.values_list("registers", flat=True))
    for (contact_id,) in fetch("contacts", query, segments, kinds=("raw",)):
        sketch_add(sketch, contact_id)
    return sketch_estimate(sketch), "hll"


def _time_keys(query: StatisticsQuery) -> list[str]:
    local_start = query.start.astimezone(query.tz).date()
    local_end = (query.end - timedelta(microseconds=1)).astimezone(query.tz).date()
    step = 1
    if query.group_by == "week":
        local_start -= timedelta(days=local_start.weekday())
        step = 7
    keys = []
    day = local_start
    while day <= local_end:
        keys.append(day.isoformat())
        day += timedelta(days=step)
    return keys


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _bucket_body(key: str, bucket: _Bucket) -> dict[str, Any]:
    return {
        "key": key,
        "interactions": bucket.interactions,
        "successes": bucket.successes,
        "success_rate": _rate(bucket.successes, bucket.interactions),
        "routes": dict(sorted(bucket.routes.items())),
        "replies": bucket.delivery["replies"],
        "replies_failed": bucket.delivery["failed"],
        "latency_p95_ms": histogram_percentile(bucket.histogram, 0.95),
    }


def statistics_compute(*, query: StatisticsQuery) -> dict[str, Any]:
    """Totals and per-bucket figures for the query, as the statistics API returns them."""
    window = rollup_window()
    segments = plan(query, window)
    buckets: dict[str, _Bucket] = defaultdict(_Bucket)
    errors: Counter = Counter()
    for row in fetch("rows", query, segments):
        _add_row(buckets[_key_value(row[0], query.group_by)], row)
    for code, count in fetch("errors", query, segments):
        errors[code or "unknown"] += count or 0

    total = _Bucket()
    for bucket in buckets.values():
        total.interactions += bucket.interactions
        total.successes += bucket.successes
        total.latency_sum_ms += bucket.latency_sum_ms
        total.routes.update(bucket.routes)
        histogram_add(total.histogram, bucket.histogram)
        total.delivery.update(bucket.delivery)

    if query.group_by in GROUP_BY_TIME:
        keys = _time_keys(query)
        keys += sorted(set(buckets) - set(keys))
    else:
        keys = sorted(buckets, key=lambda k: (-buckets[k].interactions, k))
    unique, method = _unique_contacts(query, segments)
    n = total.interactions
    main_routes = (Route.TEMPLATE, Route.AI, Route.UNMATCHED)
    return {
        "range": {
            "start": query.start.astimezone(query.tz).isoformat(),
            "end": query.end.astimezone(query.tz).isoformat(),
            "tz": query.tz.key,
            "group_by": query.group_by,
        },
        "filters": {
            "channel": query.channel or None,
            "intent": query.intent or None,
            "template": query.template or None,
        },
        "totals": {
            "interactions": n,
            "successes": total.successes,
            "success_rate": _rate(total.successes, n),
            "routes": dict(sorted(total.routes.items())),
            "share": {
                **{str(route): _rate(total.routes[route], n) for route in main_routes},
                "other": _rate(n - sum(total.routes[route] for route in main_routes), n),
            },
            "latency_ms": {
                "mean": round(total.latency_sum_ms / n, 1) if n else None,
                "p50": histogram_percentile(total.histogram, 0.50),
                "p95": histogram_percentile(total.histogram, 0.95),
                "p99": histogram_percentile(total.histogram, 0.99),
            },
            "delivery": {
                "replies": total.delivery["replies"],
                "pending": total.delivery["pending"],
                "sent": total.delivery["sent"],
                "delivered": total.delivery["delivered"],
                "read": total.delivery["read"],
                "failed": total.delivery["failed"],
                "failure_rate": _rate(total.delivery["failed"], total.delivery["replies"]),
                "top_error_codes": [
                    {"code": code, "count": count} for code, count in errors.most_common(TOP_ERROR_CODES)
                ],
            },
            "unique_contacts": unique,
            "unique_contacts_method": method,
        },
        "buckets": [_bucket_body(key, buckets.get(key, _Bucket())) for key in keys],
        "rollups": {
            "rolled_up_from": window[0].isoformat() if window[0] else None,
            "rolled_up_through": window[1].isoformat() if window[1] else None,
            "segments": [{"source": kind, "start": lo.isoformat(), "end": hi.isoformat()} for kind, lo, hi in segments],
        },
    }
