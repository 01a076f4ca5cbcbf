"""Rollup maintenance: recompute the hourly and daily rollups and the contact sketches of a time range.

Every period is recomputed from the raw rows and replaced whole (delete + insert in one transaction), so a
refresh is idempotent and may be repeated or overlap another range. Replies' statuses keep changing after
the hour of their interaction (delivered / read receipts), so the periodic refresh goes back
`ROLLUP_REFRESH_LOOKBACK_HOURS` each time.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
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
    ContactDailySketch,
    Interaction,
    InteractionDailyRollup,
    InteractionHourlyRollup,
    MessageStatus,
    RollupState,
)
from .hll import sketch_from
from .latency import LATENCY_BUCKET_BOUNDS_MS, LATENCY_BUCKETS, histogram_add, histogram_empty

logger = logging.getLogger(__name__)

STATE_NAME = "interactions"
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
    aggregates = {}
    low = 0
    for index in range(LATENCY_BUCKETS):
        high = LATENCY_BUCKET_BOUNDS_MS[index] if index < len(LATENCY_BUCKET_BOUNDS_MS) else None
        condition = Q(processing_ms__gte=low) if high is None else Q(processing_ms__gte=low, processing_ms__lt=high)
        aggregates[f"h{index}"] = Count("id", filter=condition)
        low = high or low
    return aggregates


def _hourly_rows(lo: datetime, hi: datetime) -> list[InteractionHourlyRollup]:
    """The hourly rollup rows of [lo, hi) computed from the Interaction rows (and their replies)."""
    base = Interaction.objects.filter(created_at__gte=lo, created_at__lt=hi).annotate(
        hour=TruncHour("created_at", tzinfo=UTC)
    )
    grouped = base.values("hour", *DIMENSIONS).annotate(
        n=Count("id"),
        ok=Count("id", filter=Q(success=True)),
        latency=Sum("processing_ms"),
        r=Count("reply_id"),
        r_pending=Count("id", filter=Q(reply__status__in=PENDING_STATUSES)),
        r_sent=Count("id", filter=Q(reply__status=MessageStatus.SENT)),
        r_delivered=Count("id", filter=Q(reply__status=MessageStatus.DELIVERED)),
        r_read=Count("id", filter=Q(reply__status=MessageStatus.READ)),
        r_failed=Count("id", filter=Q(reply__status=MessageStatus.FAILED)),
        **latency_histogram_aggregates(),
    )
    errors: dict[tuple, Counter] = defaultdict(Counter)
    failed = (
        base.filter(reply__status=MessageStatus.FAILED)
        .values("hour", *DIMENSIONS, "reply__error_code")
        .annotate(n=Count("id"))
    )
    for row in failed:
        errors[(row["hour"], *(row[d] for d in DIMENSIONS))][row["reply__error_code"] or "unknown"] += row["n"]

    rows = []
    for row in grouped:
        key = (row["hour"], *(row[d] for d in DIMENSIONS))
        rows.append(
            InteractionHourlyRollup(
                bucket_start=row["hour"],
                **{d: row[d] for d in DIMENSIONS},
                interactions=row["n"],
                successes=row["ok"],
                latency_sum_ms=row["latency"] or 0,
                latency_histogram=[row[f"h{i}"] for i in range(LATENCY_BUCKETS)],
                replies=row["r"],
                replies_pending=row["r_pending"],
                replies_sent=row["r_sent"],
                replies_delivered=row["r_delivered"],
                replies_read=row["r_read"],
                replies_failed=row["r_failed"],
                error_codes=dict(errors.get(key, {})),
            )
        )
    return rows


def _daily_rows(day: datetime, hourly: list[InteractionHourlyRollup]) -> list[InteractionDailyRollup]:
    merged: dict[tuple, InteractionDailyRollup] = {}
    for hour in hourly:
        key = tuple(getattr(hour, d) for d in DIMENSIONS)
        target = merged.get(key)
        if target is None:
            target = merged[key] = InteractionDailyRollup(
                bucket_start=day,
                **dict(zip(DIMENSIONS, key, strict=True)),
                latency_histogram=histogram_empty(),
                error_codes={},
            )
        for name in COUNTERS:
            setattr(target, name, getattr(target, name) + getattr(hour, name))
        histogram_add(target.latency_histogram, hour.latency_histogram)
        for code, count in hour.error_codes.items():
            target.error_codes[code] = target.error_codes.get(code, 0) + count
    return list(merged.values())


def _sketches(day: datetime, hi: datetime) -> list[ContactDailySketch]:
    contacts: dict[str, list[int]] = defaultdict(list)
    pairs = (
        Interaction.objects.filter(created_at__gte=day, created_at__lt=hi)
        .values_list("channel", "contact_id")
        .distinct()
    )
    for channel, contact_id in pairs.iterator(chunk_size=5000):
        contacts[channel].append(contact_id)
    return [
        ContactDailySketch(day=day.date(), channel=channel, registers=bytes(sketch_from(ids)))
        for channel, ids in contacts.items()
    ]


@transaction.atomic
def _day_replace(day: datetime, lo: datetime, hi: datetime, through: datetime) -> int:
    """Replace the rollups of [lo, hi) inside `day`, then that day's daily row and sketch."""
    hourly = _hourly_rows(lo, hi)
    InteractionHourlyRollup.objects.filter(bucket_start__gte=lo, bucket_start__lt=hi).delete()
    InteractionHourlyRollup.objects.bulk_create(hourly, batch_size=2000)

    day_end = day + DAY
    InteractionDailyRollup.objects.filter(bucket_start=day).delete()
    if day_end <= through:
        # Only complete days get a daily row; the current day is read from its hours.
        whole_day = list(InteractionHourlyRollup.objects.filter(bucket_start__gte=day, bucket_start__lt=day_end))
        InteractionDailyRollup.objects.bulk_create(_daily_rows(day, whole_day), batch_size=2000)

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
