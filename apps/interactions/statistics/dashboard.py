"""The admin dashboard's figures: the last 30 days from the statistics query, plus the live backlog.

Charts are drawn server-side as SVG geometry (no JavaScript, no CDN): this module turns figures into bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Min, Q
from django.utils import timezone

from ..models import Direction, Message, MessageStatus
from .selectors import StatisticsQuery, statistics_compute

ROUTE_COLOURS = {
    "template": "#2e7d32",
    "ai": "#1565c0",
    "flow": "#6a1b9a",
    "unmatched": "#ef6c00",
    "blocked": "#757575",
    "rate_limited": "#c62828",
    "opted_out": "#8d6e63",
    "ignored": "#bdbdbd",
}
CHART_WIDTH, CHART_HEIGHT = 720, 180


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


def _stacked_bars(buckets: list[dict]) -> tuple[list[Bar], int]:
    peak = max((b["interactions"] for b in buckets), default=0) or 1
    slot = CHART_WIDTH / max(1, len(buckets))
    bars = []
    for index, bucket in enumerate(buckets):
        y = float(CHART_HEIGHT)
        for route, count in sorted(bucket["routes"].items()):
            height = CHART_HEIGHT * count / peak
            y -= height
            bars.append(
                Bar(
                    x=round(index * slot + 1, 1),
                    y=round(y, 1),
                    width=round(max(1.0, slot - 2), 1),
                    height=round(height, 1),
                    colour=ROUTE_COLOURS.get(route, "#9e9e9e"),
                    title=f"{bucket['key']} {route}: {count}",
                )
            )
    return bars, peak


def _line(buckets: list[dict], field: str, peak: float | None = None) -> tuple[str, float]:
    values = [b[field] for b in buckets]
    top = peak or max((v for v in values if v is not None), default=0) or 1
    slot = CHART_WIDTH / max(1, len(buckets))
    points = [
        f"{round(i * slot + slot / 2, 1)},{round(CHART_HEIGHT - CHART_HEIGHT * v / top, 1)}"
        for i, v in enumerate(values)
        if v is not None
    ]
    return " ".join(points), top


def _ranking(buckets: list[dict], limit: int = 8) -> list[dict[str, Any]]:
    rows = [b for b in buckets if b["interactions"]][:limit]
    peak = max((b["interactions"] for b in rows), default=0) or 1
    return [
        {"key": b["key"] or "(none)", "count": b["interactions"], "percent": round(100 * b["interactions"] / peak, 1)}
        for b in rows
    ]


def backlog_get() -> dict[str, Any]:
    """Inbound rows still `received`, outbound rows still queued / sending, and the oldest one's age."""
    pending = Q(direction=Direction.INBOUND, status=MessageStatus.RECEIVED) | Q(
        direction=Direction.OUTBOUND, status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]
    )
    counts = Message.objects.filter(pending).aggregate(
        inbound=Count("id", filter=Q(direction=Direction.INBOUND)),
        outbound=Count("id", filter=Q(direction=Direction.OUTBOUND)),
        oldest=Min("created_at"),
    )
    oldest = counts["oldest"]
    age = int((timezone.now() - oldest).total_seconds()) if oldest else None
    return {
        "inbound_received": counts["inbound"],
        "outbound_queued": counts["outbound"],
        "oldest_age_seconds": age,
        "oldest_age": _duration(age),
    }


def _duration(seconds: int | None) -> str:
    """`93784` → "1 d 2 h", `125` → "2 min 5 s": the two largest units."""
    if seconds is None:
        return "–"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


def dashboard_get(*, days: int = 30, tz: str = "UTC") -> dict[str, Any]:
    """Everything the dashboard page shows, ready for the template."""
    zone = ZoneInfo(tz)
    now = timezone.now()
    start = datetime.combine((now.astimezone(zone) - timedelta(days=days - 1)).date(), time.min, tzinfo=zone)
    by_day = statistics_compute(query=StatisticsQuery(start=start, end=now, tz=zone, group_by="day"))
    by_intent = statistics_compute(query=StatisticsQuery(start=start, end=now, tz=zone, group_by="intent"))
    by_template = statistics_compute(query=StatisticsQuery(start=start, end=now, tz=zone, group_by="template"))
    buckets = by_day["buckets"]
    bars, peak = _stacked_bars(buckets)
    success_line, _ = _line(
        [{**b, "rate": b["success_rate"] * 100 if b["success_rate"] is not None else None} for b in buckets],
        "rate",
        peak=100,
    )
    latency_line, latency_peak = _line(buckets, "latency_p95_ms")
    errors = by_day["totals"]["delivery"]["top_error_codes"]
    error_peak = max((e["count"] for e in errors), default=0) or 1
    routes_seen = sorted({route for b in buckets for route in b["routes"]})
    return {
        "days": days,
        "start": start,
        "totals": by_day["totals"],
        "first_day": buckets[0]["key"] if buckets else "",
        "last_day": buckets[-1]["key"] if buckets else "",
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "route_bars": bars,
        "route_peak": peak,
        "legend": [{"route": r, "colour": ROUTE_COLOURS.get(r, "#9e9e9e")} for r in routes_seen],
        "success_line": success_line,
        "latency_line": latency_line,
        "latency_peak": latency_peak,
        "errors": [{**e, "percent": round(100 * e["count"] / error_peak, 1)} for e in errors],
        "intents": _ranking(by_intent["buckets"]),
        "templates": _ranking(by_template["buckets"]),
        "backlog": backlog_get(),
    }
