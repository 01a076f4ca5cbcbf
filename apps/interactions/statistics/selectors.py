"""The statistics query: rollups for the rolled-up hours, raw Interaction rows for the rest, merged.

A range [start, end) is cut into segments (see `_plan`): whole UTC days read from the daily rollup when the
buckets allow it (UTC, or grouping by a dimension), hours from the hourly rollup, and raw rows for partial
hours at the edges and everything past the rollup watermark (the current hour), so answers are right
immediately and cost about the same for 1 day or 90.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connections
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncWeek

from ..models import (
    LATENCY_COLUMNS,
    ContactDailySketch,
    DeliveryErrorRollup,
    Interaction,
    InteractionDailyRollup,
    InteractionHourlyRollup,
    MessageStatus,
    Route,
)
from .hll import sketch_add, sketch_estimate, sketch_merge
from .latency import histogram_add, histogram_empty, histogram_percentile
from .services import ALL_CHANNELS, COARSE, COUNTERS, DAY, HOUR, day_floor, hour_floor, raw_aggregates, rollup_window

GROUP_BY_TIME = ("day", "week")
GROUP_BY_DIMENSION = {"intent": "intent", "template": "template_name", "channel": "channel", "route": "route"}
GROUP_BY_CHOICES = (*GROUP_BY_TIME, *GROUP_BY_DIMENSION)
UTC_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"})
TOP_ERROR_CODES = 10


@dataclass(frozen=True)
class StatisticsQuery:
    """[start, end) in aware datetimes; buckets are local days / weeks (Monday) in `tz`."""

    start: datetime
    end: datetime
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    group_by: str = "day"
    channel: str = ""
    intent: str = ""
    template: str = ""
    route: str = ""

    def filters(self, template_field: str = "template_name") -> Q:
        query = Q()
        if self.channel:
            query &= Q(channel=self.channel)
        if self.intent:
            query &= Q(intent=self.intent)
        if self.template:
            query &= Q(**{template_field: self.template})
        if self.route:
            query &= Q(route=self.route)
        return query


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


Segment = tuple[str, datetime, datetime]


def _plan(query: StatisticsQuery, window: tuple[datetime | None, datetime | None]) -> list[Segment]:
    """Segments ("raw" | "hour" | "day", lo, hi) covering [start, end) exactly once."""
    start, end = query.start, query.end
    rolled_from, rolled_through = window
    if rolled_from is None or rolled_through is None:
        return [("raw", start, end)]
    a = max(_hour_ceil(start), rolled_from)
    b = min(hour_floor(end), rolled_through)
    if a >= b or (query.group_by in GROUP_BY_TIME and not _whole_hour_offsets(query)):
        return [("raw", start, end)]
    segments: list[Segment] = []
    if start < a:
        segments.append(("raw", start, a))
    days_ok = query.group_by not in GROUP_BY_TIME or query.tz.key in UTC_ZONES
    d0, d1 = _day_ceil(a), day_floor(b)
    if days_ok and d0 < d1:
        if a < d0:
            segments.append(("hour", a, d0))
        segments.append(("day", d0, d1))
        if d1 < b:
            segments.append(("hour", d1, b))
    else:
        segments.append(("hour", a, b))
    if b < end:
        segments.append(("raw", b, end))
    return segments


def _whole_hour_offsets(query: StatisticsQuery) -> bool:
    """Whether local days in the zone start on UTC hours (not India's +5:30 or Nepal's +5:45), checked daily.

    Hours cannot be split, so a zone with a fractional offset is bucketed from the raw rows.
    """
    moment = query.start
    while True:
        offset = moment.astimezone(query.tz).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
        if moment >= query.end:
            return True
        moment = min(moment + DAY, query.end)


def _hour_ceil(moment: datetime) -> datetime:
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def _day_ceil(moment: datetime) -> datetime:
    floor = day_floor(moment)
    return floor if floor == moment else floor + DAY


def _key_expression(query: StatisticsQuery, time_field: str):
    if query.group_by == "day":
        return TruncDate(time_field, tzinfo=query.tz)
    if query.group_by == "week":
        return TruncWeek(time_field, tzinfo=query.tz)
    return F(GROUP_BY_DIMENSION[query.group_by])


def _key_value(value: Any, group_by: str) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if group_by in GROUP_BY_TIME and isinstance(value, str):
        return value[:10]  # SQLite answers dates as text
    return value or ""


# Columns of every segment's rows, in this order: key, the counters, the latency buckets, then one count per route.
ROW_COLUMNS = ("key", *COUNTERS, *LATENCY_COLUMNS, *(f"route_{route}" for route in Route.values))


def _coarse_ok(query: StatisticsQuery) -> bool:
    """Whether the daily rows summed over intents and templates can answer this query."""
    return not (query.intent or query.template or query.group_by in ("intent", "template"))


def _grain(model, query: StatisticsQuery) -> Q:
    if model is InteractionHourlyRollup:
        return Q()
    return Q(intent=COARSE) if _coarse_ok(query) else ~Q(intent=COARSE)


def _rollup_rows(model, query: StatisticsQuery, lo: datetime, hi: datetime):
    # One row per bucket (routes as columns) rather than per (bucket, route): 5-8 times fewer rows to read.
    return (
        model.objects.filter(query.filters(), _grain(model, query), bucket_start__gte=lo, bucket_start__lt=hi)
        .annotate(key=_key_expression(query, "bucket_start"))
        .values("key")
        .annotate(
            # Aliased: an annotation named like the column would shadow it in the route sums.
            **{f"sum_{name}": Sum(name) for name in (*COUNTERS, *LATENCY_COLUMNS)},
            **{f"route_{route}": Sum("interactions", filter=Q(route=route)) for route in Route.values},
        )
        .order_by()
    )


def _raw_rows(query: StatisticsQuery, lo: datetime, hi: datetime):
    return (
        Interaction.objects.filter(query.filters(), created_at__gte=lo, created_at__lt=hi)
        .annotate(key=_key_expression(query, "created_at"))
        .values("key")
        .annotate(
            **raw_aggregates(),
            **{f"route_{route}": Count("id", filter=Q(route=route)) for route in Route.values},
        )
        .order_by()
    )


def _rollup_errors(query: StatisticsQuery, period: str, lo: datetime, hi: datetime):
    return (
        DeliveryErrorRollup.objects.filter(
            query.filters(),
            _grain(InteractionDailyRollup if period == "day" else InteractionHourlyRollup, query),
            period=period,
            bucket_start__gte=lo,
            bucket_start__lt=hi,
        )
        .values("error_code")
        .annotate(n=Sum("replies"))
        .order_by()
    )


def _raw_errors(query: StatisticsQuery, lo: datetime, hi: datetime):
    return (
        Interaction.objects.filter(
            query.filters(), created_at__gte=lo, created_at__lt=hi, reply__status=MessageStatus.FAILED
        )
        .values(error_code=F("reply__error_code"))
        .annotate(n=Count("id"))
        .order_by()
    )


def _raw_contacts(query: StatisticsQuery, lo: datetime, hi: datetime):
    return (
        Interaction.objects.filter(query.filters(), created_at__gte=lo, created_at__lt=hi)
        .values_list("contact_id")
        .order_by()
    )


def _segment_queryset(what: str, kind: str, query: StatisticsQuery, lo: datetime, hi: datetime):
    if what == "rows":
        if kind == "raw":
            return _raw_rows(query, lo, hi)
        return _rollup_rows(InteractionDailyRollup if kind == "day" else InteractionHourlyRollup, query, lo, hi)
    if what == "errors":
        return _raw_errors(query, lo, hi) if kind == "raw" else _rollup_errors(query, kind, lo, hi)
    return _raw_contacts(query, lo, hi)


# Compiling these querysets (dozens of filtered aggregates) costs more than running them on rollups, and their
# shape depends only on (what, kind, group_by, tz, which filters): compile once with sentinel values, then
# substitute the real bounds and filter values into the parameters.
_SENTINEL_LO = datetime(1001, 1, 1, tzinfo=UTC)
_SENTINEL_HI = datetime(1001, 1, 2, tzinfo=UTC)
_FILTER_NAMES = ("channel", "intent", "template", "route")


@lru_cache(maxsize=512)
def _compiled(what: str, kind: str, group_by: str, tz_key: str, filters: tuple[str, ...], alias: str):
    sentinels = {name: f"\x00{name}\x00" for name in filters}
    shape = StatisticsQuery(start=_SENTINEL_LO, end=_SENTINEL_HI, tz=ZoneInfo(tz_key), group_by=group_by, **sentinels)
    sql, params = _segment_queryset(what, kind, shape, _SENTINEL_LO, _SENTINEL_HI).query.sql_with_params()
    adapt = connections[alias].ops.adapt_datetimefield_value
    slots = {adapt(_SENTINEL_LO): "lo", adapt(_SENTINEL_HI): "hi", **{v: k for k, v in sentinels.items()}}
    template = [slots.get(p) if isinstance(p, str | datetime) else None for p in params]
    return sql, tuple(params), tuple(template)


def _fetch(what: str, query: StatisticsQuery, segments: list[Segment], *, kinds: tuple[str, ...] = ()) -> list:
    """Every segment's rows in one UNION ALL round trip, as plain tuples (no per-value ORM conversion)."""
    alias = Interaction.objects.db
    connection = connections[alias]
    adapt = connection.ops.adapt_datetimefield_value
    filters = tuple(name for name in _FILTER_NAMES if getattr(query, name))
    parts, all_params = [], []
    for kind, lo, hi in segments:
        if kinds and kind not in kinds:
            continue
        sql, params, template = _compiled(what, kind, query.group_by, query.tz.key, filters, alias)
        values = {"lo": adapt(lo), "hi": adapt(hi), **{name: getattr(query, name) for name in filters}}
        parts.append(sql)
        all_params += [values[slot] if slot else param for param, slot in zip(params, template, strict=True)]
    if not parts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), all_params)
        return cursor.fetchall()


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
    for (contact_id,) in _fetch("contacts", query, segments, kinds=("raw",)):
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
    segments = _plan(query, window)
    buckets: dict[str, _Bucket] = defaultdict(_Bucket)
    errors: Counter = Counter()
    for row in _fetch("rows", query, segments):
        _add_row(buckets[_key_value(row[0], query.group_by)], row)
    for code, count in _fetch("errors", query, segments):
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
