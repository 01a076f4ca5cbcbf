"""A statistics query's range cut into segments, and every segment's rows fetched in one round trip.

`plan` covers [start, end) exactly once with segments: whole UTC days from the daily rollup when the buckets
allow it (UTC, or grouping by a dimension), hours from the hourly rollup, and raw Interaction rows for partial
hours at the edges and everything past the rollup watermark. `fetch` runs one UNION ALL over the segments'
querysets, compiled once per shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.db import connections
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate, TruncWeek

from ..models import (
    LATENCY_COLUMNS,
    DeliveryErrorRollup,
    Interaction,
    InteractionDailyRollup,
    InteractionHourlyRollup,
    MessageStatus,
    Route,
)
from .query import GROUP_BY_DIMENSION, GROUP_BY_TIME, UTC_ZONES, StatisticsQuery
from .services import COARSE, COUNTERS, DAY, HOUR, day_floor, hour_floor, raw_aggregates

Segment = tuple[str, datetime, datetime]


def plan(query: StatisticsQuery, window: tuple[datetime | None, datetime | None]) -> list[Segment]:
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


def key_expression(query: StatisticsQuery, time_field: str):
    if query.group_by == "day":
        return TruncDate(time_field, tzinfo=query.tz)
    if query.group_by == "week":
        return TruncWeek(time_field, tzinfo=query.tz)
    return F(GROUP_BY_DIMENSION[query.group_by])


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
        .annotate(key=key_expression(query, "bucket_start"))
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
        .annotate(key=key_expression(query, "created_at"))
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
    slots: dict[object, str] = {
        adapt(_SENTINEL_LO): "lo",
        adapt(_SENTINEL_HI): "hi",
        **{v: k for k, v in sentinels.items()},
    }
    template = [slots.get(p) if isinstance(p, str | datetime) else None for p in params]
    return sql, tuple(params), tuple(template)


def fetch(what: str, query: StatisticsQuery, segments: list[Segment], *, kinds: tuple[str, ...] = ()) -> list:
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
