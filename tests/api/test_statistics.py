"""Statistics checked against a straightforward recomputation from the Interaction rows."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.interactions.models import Interaction
from apps.interactions.statistics.latency import latency_bucket, latency_bucket_range
from apps.interactions.statistics.services import hour_floor, rollups_refresh

from .factories import interactions_generate

URL = "/api/v1/whatsapp/statistics/"
DIMENSION_FIELDS = {"intent": "intent", "template": "template_name", "channel": "channel", "route": "route"}


@pytest.fixture
def dataset(db):
    """400 interactions over the last 10 days, the current hour included."""
    now = timezone.now()
    start = hour_floor(now) - timedelta(days=10)
    hours = 10 * 24
    rows = interactions_generate(start=start, hours=hours, count=380)
    rows += interactions_generate(start=hour_floor(now), hours=0, count=0)
    # A few in the current, incomplete hour: only the raw rows can count them.
    current = interactions_generate(start=hour_floor(now), hours=1, count=40, seed=11)
    for row in current:
        moved = hour_floor(now) + (now - hour_floor(now)) * ((row.pk % 10) / 10)
        Interaction.objects.filter(pk=row.pk).update(created_at=moved)
    return start


def _key(interaction, tz: ZoneInfo, group_by: str) -> str:
    if group_by in DIMENSION_FIELDS:
        return getattr(interaction, DIMENSION_FIELDS[group_by])
    local = interaction.created_at.astimezone(tz).date()
    if group_by == "week":
        local -= timedelta(days=local.weekday())
    return local.isoformat()


def _exact_percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


def _assert_within_bucket(estimate: float | None, values: list[int], q: float) -> None:
    exact = _exact_percentile(values, q)
    low, high = latency_bucket_range(latency_bucket(exact))
    assert low <= estimate <= (high if high is not None else low), (estimate, exact)


def _expected(*, start: datetime, end: datetime, tz: str = "UTC", group_by: str = "day", **filters):
    zone = ZoneInfo(tz)
    rows = [
        i
        for i in Interaction.objects.select_related("reply").filter(created_at__gte=start, created_at__lt=end)
        if all(getattr(i, DIMENSION_FIELDS[name]) == value for name, value in filters.items())
    ]
    buckets: dict[str, dict] = {}
    for row in rows:
        bucket = buckets.setdefault(
            _key(row, zone, group_by),
            {"interactions": 0, "successes": 0, "routes": Counter(), "replies": 0, "replies_failed": 0, "ms": []},
        )
        bucket["interactions"] += 1
        bucket["successes"] += row.success
        bucket["routes"][row.route] += 1
        bucket["replies"] += row.reply is not None
        bucket["replies_failed"] += bool(row.reply and row.reply.status == "failed")
        bucket["ms"].append(row.processing_ms)
    replies = [row.reply for row in rows if row.reply]
    return rows, buckets, replies


def _compare(body: dict, *, start: datetime, end: datetime, tz: str = "UTC", group_by: str = "day", **filters):
    rows, buckets, replies = _expected(start=start, end=end, tz=tz, group_by=group_by, **filters)
    n = len(rows)
    totals = body["totals"]
    routes = Counter(row.route for row in rows)
    assert n > 0
    assert totals["interactions"] == n
    assert totals["successes"] == sum(row.success for row in rows)
    assert totals["success_rate"] == round(totals["successes"] / n, 4)
    assert totals["routes"] == dict(sorted(routes.items()))
    assert totals["share"] == {
        "template": round(routes["template"] / n, 4),
        "ai": round(routes["ai"] / n, 4),
        "unmatched": round(routes["unmatched"] / n, 4),
        "other": round((n - routes["template"] - routes["ai"] - routes["unmatched"]) / n, 4),
    }
    statuses = Counter(reply.status for reply in replies)
    errors = Counter(reply.error_code for reply in replies if reply.status == "failed")
    assert totals["delivery"] == {
        "replies": len(replies),
        "pending": statuses["queued"] + statuses["sending"] + statuses["unknown"],
        "sent": statuses["sent"],
        "delivered": statuses["delivered"],
        "read": statuses["read"],
        "failed": statuses["failed"],
        "failure_rate": round(statuses["failed"] / len(replies), 4),
        "top_error_codes": [{"code": c, "count": k} for c, k in sorted(errors.items(), key=lambda x: (-x[1], x[0]))],
    }
    latencies = [row.processing_ms for row in rows]
    assert totals["latency_ms"]["mean"] == round(sum(latencies) / n, 1)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        _assert_within_bucket(totals["latency_ms"][name], latencies, q)
    contacts = len({row.contact_id for row in rows})
    # HyperLogLog: ±2.3 % standard error, and a few register collisions at small counts.
    assert abs(totals["unique_contacts"] - contacts) <= max(3, contacts * 0.07)

    got = {bucket["key"]: bucket for bucket in body["buckets"] if bucket["interactions"]}
    assert set(got) == set(buckets)
    for key, expected in buckets.items():
        bucket = got[key]
        assert bucket["interactions"] == expected["interactions"], key
        assert bucket["successes"] == expected["successes"], key
        assert bucket["routes"] == dict(sorted(expected["routes"].items())), key
        assert bucket["replies"] == expected["replies"], key
        assert bucket["replies_failed"] == expected["replies_failed"], key
        _assert_within_bucket(bucket["latency_p95_ms"], expected["ms"], 0.95)
    return rows


def _params(start: datetime, end: datetime, **extra) -> dict:
    return {"start": start.isoformat(), "end": end.isoformat(), **extra}


@pytest.mark.django_db
@pytest.mark.parametrize("refreshed", [False, True], ids=["raw-only", "rollups"])
@pytest.mark.parametrize(
    ("tz", "group_by"),
    [
        ("UTC", "day"),
        ("Africa/Nairobi", "day"),
        ("America/New_York", "week"),
        ("Asia/Kolkata", "day"),
        ("UTC", "intent"),
        ("UTC", "template"),
        ("Pacific/Auckland", "channel"),
        ("UTC", "route"),
    ],
)
def test_statistics_match_a_recomputation_from_the_rows(analyst_client, dataset, refreshed, tz, group_by):
    if refreshed:
        rollups_refresh()
    start, end = dataset - timedelta(hours=5), timezone.now() + timedelta(minutes=1)

    response = analyst_client.get(URL, _params(start, end, tz=tz, group_by=group_by))

    assert response.status_code == 200
    body = response.json()
    _compare(body, start=start, end=end, tz=tz, group_by=group_by)
    sources = {segment["source"] for segment in body["rollups"]["segments"]}
    if tz == "Asia/Kolkata":
        # Local days start at half past a UTC hour: hours cannot be split, so the raw rows are read.
        assert sources == {"raw"}
    elif refreshed:
        # Rolled-up hours come from rollups, the current hour from the raw rows.
        assert "raw" in sources and sources & {"hour", "day"}
    else:
        assert sources == {"raw"}


@pytest.mark.django_db
def test_long_utc_ranges_read_whole_days_from_the_daily_rollup(analyst_client, dataset):
    rollups_refresh()
    start = dataset.replace(hour=0) + timedelta(days=1)
    end = timezone.now()

    body = analyst_client.get(URL, _params(start, end)).json()

    kinds = [segment["source"] for segment in body["rollups"]["segments"]]
    assert kinds == ["day", "hour", "raw"] if hour_floor(end) > end.replace(hour=0, minute=0) else ["day", "raw"]
    _compare(body, start=start, end=end)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filters",
    [{"channel": "twilio"}, {"intent": "booking"}, {"template": "price_list"}, {"channel": "acs", "intent": "hours"}],
)
def test_filters_narrow_every_figure(analyst_client, dataset, filters):
    rollups_refresh()
    start, end = dataset, timezone.now() + timedelta(minutes=1)

    body = analyst_client.get(URL, _params(start, end, tz="Africa/Nairobi", **filters)).json()

    rows = _compare(body, start=start, end=end, tz="Africa/Nairobi", **filters)
    assert body["filters"] == {
        "channel": filters.get("channel"),
        "intent": filters.get("intent"),
        "template": filters.get("template"),
    }
    assert body["totals"]["unique_contacts_method"] == ("hll" if set(filters) == {"channel"} else "exact")
    if body["totals"]["unique_contacts_method"] == "exact":
        assert body["totals"]["unique_contacts"] == len({row.contact_id for row in rows})


@pytest.mark.django_db
def test_dates_are_whole_local_days_and_empty_days_are_listed(analyst_client, dataset):
    rollups_refresh()
    today = timezone.now().astimezone(ZoneInfo("Africa/Nairobi")).date()
    first = today - timedelta(days=3)

    body = analyst_client.get(
        URL, {"start": first.isoformat(), "end": today.isoformat(), "tz": "Africa/Nairobi"}
    ).json()

    assert body["range"]["start"] == f"{first.isoformat()}T00:00:00+03:00"
    assert body["range"]["end"] == f"{(today + timedelta(days=1)).isoformat()}T00:00:00+03:00"
    assert [bucket["key"] for bucket in body["buckets"]] == [(first + timedelta(days=i)).isoformat() for i in range(4)]
    local_start = datetime.combine(first, datetime.min.time(), tzinfo=ZoneInfo("Africa/Nairobi"))
    _compare(body, start=local_start, end=local_start + timedelta(days=4), tz="Africa/Nairobi")


@pytest.mark.django_db
def test_an_empty_range_answers_zeros(analyst_client):
    body = analyst_client.get(URL, {"start": "2026-01-01", "end": "2026-01-02"}).json()

    assert body["totals"] == {
        "interactions": 0,
        "successes": 0,
        "success_rate": None,
        "routes": {},
        "share": {"template": None, "ai": None, "unmatched": None, "other": None},
        "latency_ms": {"mean": None, "p50": None, "p95": None, "p99": None},
        "delivery": {
            "replies": 0,
            "pending": 0,
            "sent": 0,
            "delivered": 0,
            "read": 0,
            "failed": 0,
            "failure_rate": None,
            "top_error_codes": [],
        },
        "unique_contacts": 0,
        "unique_contacts_method": "exact",
    }
    assert [b["key"] for b in body["buckets"]] == ["2026-01-01", "2026-01-02"]


def _validation_error(fields: dict) -> dict:
    return {"error": {"code": "VALIDATION_ERROR", "message": "Invalid input.", "details": {"fields": fields}}}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"group_by": "hour"}, {"group_by": ['"hour" is not a valid choice.']}),
        ({"tz": "Mars/Olympus"}, {"tz": ["Unknown time zone 'Mars/Olympus'."]}),
        ({"start": "yesterday"}, {"start": ["Use a date (YYYY-MM-DD) or an ISO 8601 datetime."]}),
        ({"end": "2026-02-30"}, {"end": ["Use a date (YYYY-MM-DD) or an ISO 8601 datetime."]}),
        ({"start": "2026-03-02", "end": "2026-03-01"}, {"start": ["start must be before end."]}),
        ({"start": "2024-01-01", "end": "2026-01-01"}, {"end": ["The range may span at most 400 days."]}),
        ({"channel": "telegram"}, {"channel": ['"telegram" is not a valid choice.']}),
    ],
)
def test_bad_parameters_get_400_with_the_error_shape(analyst_client, params, fields):
    response = analyst_client.get(URL, params)

    assert response.status_code == 400
    assert response.json() == _validation_error(fields)


@pytest.mark.django_db
def test_interactions_after_a_refresh_are_counted_at_once(analyst_client, dataset):
    rollups_refresh()
    start, end = dataset, timezone.now() + timedelta(minutes=1)
    before = analyst_client.get(URL, _params(start, end)).json()["totals"]["interactions"]

    interactions_generate(start=timezone.now() - timedelta(seconds=1), hours=0, count=3, seed=5)

    after = analyst_client.get(URL, _params(start, end)).json()["totals"]["interactions"]
    assert after == before + 3


@pytest.mark.django_db
def test_a_refresh_picks_up_replies_whose_status_changed_later(analyst_client, dataset):
    rollups_refresh()
    start, end = dataset, hour_floor(timezone.now())
    # Within the refresh's look-back (ROLLUP_REFRESH_LOOKBACK_HOURS, 48 h).
    recent = Interaction.objects.filter(
        created_at__gte=end - timedelta(hours=30), created_at__lt=end - timedelta(hours=2)
    )
    interaction = recent.filter(reply__status="delivered").first()
    failed_before = analyst_client.get(URL, _params(start, end)).json()["totals"]["delivery"]["failed"]
    type(interaction.reply).objects.filter(pk=interaction.reply_id).update(status="failed", error_code="131026")

    rollups_refresh()

    body = analyst_client.get(URL, _params(start, end)).json()
    assert body["totals"]["delivery"]["failed"] == failed_before + 1
    _compare(body, start=start, end=end)


def test_latency_buckets_cover_every_value():
    assert latency_bucket(0) == 0
    assert latency_bucket_range(latency_bucket(149)) == (100, 150)
    assert latency_bucket_range(latency_bucket(150)) == (150, 200)
    assert latency_bucket_range(latency_bucket(10**7)) == (60000, None)
    assert datetime(2026, 1, 1, tzinfo=UTC)  # aware datetimes only
