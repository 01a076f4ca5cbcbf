"""Rollup maintenance: recompute the hourly and daily rollups and the contact sketches of a time range.

Every period is recomputed from the raw rows and replaced whole (delete + insert in one transaction), so a
refresh is idempotent and may be repeated or overlap another range. Replies' statuses keep changing after
the hour of their interaction (delivered / read receipts), so the periodic refresh goes back
`ROLLUP_REFRESH_LOOKBACK_HOURS` each time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from apps.core.locks import advisory_lock

from ..models import (
    LATENCY_COLUMNS,
    ContactDailySketch,
    DeliveryErrorRollup,
    Interaction,
    InteractionDailyRollup,
    InteractionHourlyRollup,
    MessageStatus,
    RollupPeriod,
    RollupState,
)
from .hll import sketch_from, sketch_merge
from .latency import LATENCY_BUCKET_BOUNDS_MS, LATENCY_BUCKETS

assert len(LATENCY_COLUMNS) == LATENCY_BUCKETS, "one rollup column per latency bucket"

logger = logging.getLogger(__name__)

STATE_NAME = "interactions"
# The ContactDailySketch channel of the sketch of every channel together.
ALL_CHANNELS = "*"
# Intent and template of the daily rows summed over every intent and template (intents are slugs and template
# names [a-z0-9_], so no real value is "*"). Every daily read filters on it one way or the other.
COARSE = "*"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DIMENSIONS = ("channel", "intent", "template_name", "route")
PENDING_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN)
COUNTERS = (
    "interactions",
    "successes",
    "latency_sum_ms",
    "replies",
    "replies_pending",
    "replies_sent",
    "replies_delivered",
    "replies_read",
    "replies_failed",
)


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class RefreshResult:
    since: datetime | None
    through: datetime
    days: int
    hourly_rows: int


def latency_histogram_aggregates() -> dict:
    """`latency_NN` → Count of the interactions whose processing_ms falls in bucket NN (for raw rows)."""
    aggregates = {}
    low = 0
    for index, column in enumerate(LATENCY_COLUMNS):
        high = LATENCY_BUCKET_BOUNDS_MS[index] if index < len(LATENCY_BUCKET_BOUNDS_MS) else None
        condition = Q(processing_ms__gte=low) if high is None else Q(processing_ms__gte=low, processing_ms__lt=high)
        aggregates[column] = Count("id", filter=condition)
        low = high or low
    return aggregates


def raw_aggregates() -> dict:
    """The rollup counters computed from Interaction rows (joined to their replies)."""
    return {
        "interactions": Count("id"),
        "successes": Count("id", filter=Q(success=True)),
        "latency_sum_ms": Sum("processing_ms"),
        "replies": Count("reply_id"),
        "replies_pending": Count("id", filter=Q(reply__status__in=PENDING_STATUSES)),
        "replies_sent": Count("id", filter=Q(reply__status=MessageStatus.SENT)),
        "replies_delivered": Count("id", filter=Q(reply__status=MessageStatus.DELIVERED)),
        "replies_read": Count("id", filter=Q(reply__status=MessageStatus.READ)),
        "replies_failed": Count("id", filter=Q(reply__status=MessageStatus.FAILED)),
        **latency_histogram_aggregates(),
    }


def _hourly_rows(lo: datetime, hi: datetime) -> tuple[list[InteractionHourlyRollup], list[DeliveryErrorRollup]]:
    """The hourly rollup rows of [lo, hi) computed from the Interaction rows (and their replies)."""
    base = Interaction.objects.filter(created_at__gte=lo, created_at__lt=hi).annotate(
        hour=TruncHour("created_at", tzinfo=UTC)
    )
    grouped = base.values("hour", *DIMENSIONS).annotate(**raw_aggregates()).order_by()
    rows = [
        InteractionHourlyRollup(
            bucket_start=row["hour"],
            **{d: row[d] for d in DIMENSIONS},
            **{name: row[name] or 0 for name in (*COUNTERS, *LATENCY_COLUMNS)},
        )
        for row in grouped
    ]
    failed = (
        base.filter(reply__status=MessageStatus.FAILED)
        .values("hour", *DIMENSIONS, "reply__error_code")
        .annotate(n=Count("id"))
        .order_by()
    )
    errors = [
        DeliveryErrorRollup(
            period=RollupPeriod.HOUR,
            bucket_start=row["hour"],
            **{d: row[d] for d in DIMENSIONS},
            error_code=row["reply__error_code"] or "unknown",
            replies=row["n"],
        )
        for row in failed
    ]
    return rows, errors


def _daily_rows(day: datetime, day_end: datetime) -> tuple[list[InteractionDailyRollup], list[DeliveryErrorRollup]]:
    """The day's rollups as the sum of its hourly rollups."""
    hours = InteractionHourlyRollup.objects.filter(bucket_start__gte=day, bucket_start__lt=day_end)
    grouped = hours.values(*DIMENSIONS).annotate(**{name: Sum(name) for name in (*COUNTERS, *LATENCY_COLUMNS)})
    rows = [InteractionDailyRollup(bucket_start=day, **row) for row in grouped.order_by()]
    errors = (
        DeliveryErrorRollup.objects.filter(period=RollupPeriod.HOUR, bucket_start__gte=day, bucket_start__lt=day_end)
        .values(*DIMENSIONS, "error_code")
        .annotate(total=Sum("replies"))
        .order_by()
    )
    daily_errors = [
        DeliveryErrorRollup(
            period=RollupPeriod.DAY,
            bucket_start=day,
            **{d: row[d] for d in DIMENSIONS},
            error_code=row["error_code"],
            replies=row["total"],
        )
        for row in errors
    ]
    return rows + _coarse(rows), daily_errors + _coarse_errors(daily_errors)


def _coarse(rows: list[InteractionDailyRollup]) -> list[InteractionDailyRollup]:
    """The same day per (channel, route) only, intent and template COARSE: what unfiltered queries read.

    About ten times fewer rows than the full dimensions, which is most of what a 90-day query costs.
    """
    merged: dict[tuple[str, str], InteractionDailyRollup] = {}
    for row in rows:
        target = merged.get((row.channel, row.route))
        if target is None:
            target = merged[(row.channel, row.route)] = InteractionDailyRollup(
                bucket_start=row.bucket_start, channel=row.channel, route=row.route, intent=COARSE, template_name=COARSE
            )
        for name in (*COUNTERS, *LATENCY_COLUMNS):
            setattr(target, name, getattr(target, name) + getattr(row, name))
    return list(merged.values())


def _coarse_errors(rows: list[DeliveryErrorRollup]) -> list[DeliveryErrorRollup]:
    merged: dict[tuple[str, str, str], DeliveryErrorRollup] = {}
    for row in rows:
        key = (row.channel, row.route, row.error_code)
        target = merged.get(key)
        if target is None:
            target = merged[key] = DeliveryErrorRollup(
                period=row.period,
                bucket_start=row.bucket_start,
                channel=row.channel,
                route=row.route,
                intent=COARSE,
                template_name=COARSE,
                error_code=row.error_code,
            )
        target.replies += row.replies
    return list(merged.values())


def _sketches(day: datetime, hi: datetime) -> list[ContactDailySketch]:
    contacts: dict[str, list[int]] = defaultdict(list)
    pairs = (
        Interaction.objects.filter(created_at__gte=day, created_at__lt=hi)
        .values_list("channel", "contact_id")
        .distinct()
        .order_by()
    )
    for channel, contact_id in pairs.iterator(chunk_size=5000):
        contacts[channel].append(contact_id)
    sketches = {channel: sketch_from(ids) for channel, ids in contacts.items()}
    if sketches:
        # All channels together, so an unfiltered range merges one sketch per day instead of one per channel.
        sketches[ALL_CHANNELS] = sketch_merge(sketches.values())
    return [
        ContactDailySketch(day=day.date(), channel=channel, registers=bytes(sketch))
        for channel, sketch in sketches.items()
    ]


@transaction.atomic
def _day_replace(day: datetime, lo: datetime, hi: datetime, through: datetime) -> int:
    """Replace the rollups of [lo, hi) inside `day`, then that day's daily rows and sketches."""
    hourly, hourly_errors = _hourly_rows(lo, hi)
    InteractionHourlyRollup.objects.filter(bucket_start__gte=lo, bucket_start__lt=hi).delete()
    InteractionHourlyRollup.objects.bulk_create(hourly, batch_size=2000)
    DeliveryErrorRollup.objects.filter(period=RollupPeriod.HOUR, bucket_start__gte=lo, bucket_start__lt=hi).delete()
    DeliveryErrorRollup.objects.bulk_create(hourly_errors, batch_size=2000)

    day_end = day + DAY
    InteractionDailyRollup.objects.filter(bucket_start=day).delete()
    DeliveryErrorRollup.objects.filter(period=RollupPeriod.DAY, bucket_start=day).delete()
    if day_end <= through:
        # Only complete days get daily rows; the current day is read from its hours.
        daily, daily_errors = _daily_rows(day, day_end)
        InteractionDailyRollup.objects.bulk_create(daily, batch_size=2000)
        DeliveryErrorRollup.objects.bulk_create(daily_errors, batch_size=2000)

    ContactDailySketch.objects.filter(day=day.date()).delete()
    ContactDailySketch.objects.bulk_create(_sketches(day, min(day_end, through)))
    return len(hourly)


def rollup_window() -> tuple[datetime | None, datetime | None]:
    """(refreshed_from, refreshed_through): the hours in between are rolled up; anything else is read raw."""
    state = RollupState.objects.filter(name=STATE_NAME).values_list("refreshed_from", "refreshed_through").first()
    if state is None or state[0] is None or state[1] is None:
        return None, None
    return state[0], state[1]


def rollups_refresh(
    *,
    since: datetime | None = None,
    full: bool = False,
    progress: Callable[[datetime, int, int], None] | None = None,
) -> RefreshResult:
    """Recompute the rollups of every complete hour from `since` up to the current hour.

    since: default the watermark minus ROLLUP_REFRESH_LOOKBACK_HOURS, or the first interaction on the first
        run. A `since` after the watermark starts at the watermark, so the rolled-up hours stay contiguous.
    full: drop every rollup first and rebuild from the first interaction (or from `since`).
    progress: called after each day as progress(day, done, total).
    Idempotent; runs under an advisory lock so two refreshes never interleave.
    """
    with advisory_lock("rollups", STATE_NAME):
        through = hour_floor(timezone.now())
        state, _ = RollupState.objects.get_or_create(name=STATE_NAME)
        if full:
            InteractionHourlyRollup.objects.all().delete()
            InteractionDailyRollup.objects.all().delete()
            ContactDailySketch.objects.all().delete()
            DeliveryErrorRollup.objects.all().delete()
            state.refreshed_from = state.refreshed_through = None
        first = Interaction.objects.aggregate(first=Min("created_at"))["first"]
        if state.refreshed_through is None:
            start = since if since is not None else first
        else:
            lookback = timedelta(hours=settings.ROLLUP_REFRESH_LOOKBACK_HOURS)
            start = since if since is not None else state.refreshed_through - lookback
            start = min(start, state.refreshed_through)
        if start is None:
            start = through
        # Hours before the first interaction are empty: no need to walk them.
        if first is not None:
            start = max(start, hour_floor(first))
        start = min(hour_floor(start), through)

        days = []
        day = day_floor(start)
        while day < through:
            days.append(day)
            day += DAY
        written = 0
        for done, day in enumerate(days, start=1):
            written += _day_replace(day, max(day, start), min(day + DAY, through), through)
            if progress:
                progress(day, done, len(days))
        state.refreshed_from = start if state.refreshed_from is None else min(state.refreshed_from, start)
        state.refreshed_through = through
        state.save(update_fields=["refreshed_from", "refreshed_through", "updated_at"])
        logger.info("rollups refreshed from %s through %s: %s hourly rows", start, through, written)
        return RefreshResult(since=start, through=through, days=len(days), hourly_rows=written)
