"""Benchmark (not a test): the 90-day statistics query over millions of interactions, rollups vs raw.

    .venv/bin/python bench/statistics.py [--rows 5000000] [--runs 30] [--keep]

1. migrates its own database (BENCH_STATS_DATABASE_URL, default relay_h6_bench) and loads --rows interactions
   (with their inbound messages, replies and contacts) spread over the last 91 days, with COPY;
2. rebuilds the rollups (rebuild_rollups' service) and times it;
3. times statistics_compute for 90 days (UTC by day, by intent, and Africa/Nairobi by day — the hourly path),
   --runs times each, and a naive GROUP BY over the raw table in the same run;
4. prints the figures and writes bench/results/statistics.json. Target: p95 ≤ 50 ms for the 90-day query.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_STATS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay_h6_bench"
)
os.environ["REDIS_URL"] = os.environ.get("BENCH_STATS_REDIS_URL", "redis://127.0.0.1:6379/6")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.interactions.models import Contact, Interaction, Message  # noqa: E402
from apps.interactions.statistics.selectors import StatisticsQuery, statistics_compute  # noqa: E402
from apps.interactions.statistics.services import rollups_refresh  # noqa: E402

CHANNELS = ["acs", "acs", "acs", "twilio", "meta"]
INTENTS = [f"intent_{i:02d}" for i in range(12)]
ROUTES = (["template"] * 55) + (["ai"] * 25) + (["unmatched"] * 10) + (["flow"] * 6) + (["blocked"] * 4)
STATUSES = (["read"] * 50) + (["delivered"] * 28) + (["sent"] * 12) + (["failed"] * 7) + (["queued"] * 3)
ERRORS = ["131047", "131026", "131049", "131000", "63016"]


def _ensure_database() -> None:
    import psycopg

    name = connection.settings_dict["NAME"]
    admin = psycopg.connect(
        host=connection.settings_dict["HOST"] or "127.0.0.1",
        port=connection.settings_dict["PORT"] or 5432,
        user=connection.settings_dict["USER"] or "postgres",
        dbname="postgres",
        autocommit=True,
    )
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        admin.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def _column_values(model, provided: dict, now: datetime) -> list:
    values = []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.attname not in provided:
            continue
        if field.attname in provided:
            value = provided[field.attname]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()  # "" for blank text fields, None for nullable ones
        if field.get_internal_type() == "JSONField" and value is not None:
            value = json.dumps(value)
        values.append(value)
    return values


def _columns(model, provided_keys) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if not (f.primary_key and f.attname not in provided_keys)]


def _copy(model, rows) -> int:
    """COPY an iterable of dicts (attname → value) into the model's table; returns the row count."""
    now = timezone.now()
    count = 0
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    columns = _columns(model, first.keys())
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.connection.cursor().copy(sql) as copy:
        copy.write_row(_column_values(model, first, now))
        count = 1
        for row in rows:
            copy.write_row(_column_values(model, row, now))
            count += 1
    return count


def _next_id(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {model._meta.db_table}")
        return cursor.fetchone()[0]


def _sequence_reset(model) -> None:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")


def generate(rows: int, days: int = 91, seed: int = 42) -> dict:
    """Load `rows` interactions over the last `days` days. Returns timings."""
    rng = random.Random(seed)
    now = timezone.now()
    span = days * 86400
    started = time.perf_counter()
    contacts = max(100, rows // 20)
    contact_base = _next_id(Contact)
    _copy(
        Contact,
        (
            {
                "id": contact_base + i,
                "phone": f"+2547{10_000_000 + contact_base + i:08d}",
                "channel": rng.choice(CHANNELS),
            }
            for i in range(contacts)
        ),
    )
    message_base, interaction_base = _next_id(Message), _next_id(Interaction)
    plan = []
    for i in range(rows):
        created = now - timedelta(seconds=span * (1 - (i + rng.random()) / rows))
        route = rng.choice(ROUTES)
        intent = rng.choice(INTENTS) if route in ("template", "flow", "ai") and rng.random() < 0.9 else ""
        status = rng.choice(STATUSES) if route != "blocked" else None
        plan.append(
            (
                created,
                contact_base
                + min(contacts - 1, int(rng.paretovariate(1.2)) * 7 % contacts + rng.randrange(contacts) // 3),
                rng.choice(CHANNELS),
                route,
                intent,
                f"tpl_{intent}" if route == "template" and intent else "",
                status,
                rng.choice(ERRORS) if status == "failed" else "",
                max(1, int(rng.lognormvariate(5.5, 1.0))),
                rng.random() > 0.03,
            )
        )

    def messages():
        for i, (created, contact, channel, *_rest) in enumerate(plan):
            yield {
                "id": message_base + 2 * i,
                "contact_id": contact,
                "direction": "in",
                "channel": channel,
                "provider_message_id": f"bench.{message_base + 2 * i}",
                "text": "hola",
                "status": "processed",
                "created_at": created,
                "received_at": created,
            }
            status = plan[i][6]
            if status:
                yield {
                    "id": message_base + 2 * i + 1,
                    "contact_id": contact,
                    "direction": "out",
                    "channel": channel,
                    "provider_message_id": f"bench.{message_base + 2 * i + 1}",
                    "text": "respuesta",
                    "status": status,
                    "error_code": plan[i][7],
                    "in_reply_to_id": message_base + 2 * i,
                    "created_at": created + timedelta(milliseconds=plan[i][8]),
                }

    _copy(Message, messages())

    def interactions():
        for i, (created, contact, channel, route, intent, template, status, _e, ms, ok) in enumerate(plan):
            yield {
                "id": interaction_base + i,
                "message_id": message_base + 2 * i,
                "contact_id": contact,
                "channel": channel,
                "intent": intent,
                "route": route,
                "template_name": template,
                "reply_id": message_base + 2 * i + 1 if status else None,
                "processing_ms": ms,
                "success": ok,
                "created_at": created,
                "updated_at": created,
            }

    _copy(Interaction, interactions())
    for model in (Contact, Message, Interaction):
        _sequence_reset(model)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"rows": rows, "contacts": contacts, "load_seconds": round(time.perf_counter() - started, 1)}


NAIVE_SQL = """
SELECT date_trunc('day', i.created_at AT TIME ZONE 'UTC') AS day, i.route,
       COUNT(*), SUM(CASE WHEN i.success THEN 1 ELSE 0 END), SUM(i.processing_ms),
       COUNT(r.id), SUM(CASE WHEN r.status = 'failed' THEN 1 ELSE 0 END),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY i.processing_ms)
FROM interactions_interaction i LEFT JOIN interactions_message r ON r.id = i.reply_id
WHERE i.created_at >= %s AND i.created_at < %s
GROUP BY 1, 2
"""
NAIVE_TOTALS_SQL = """
SELECT COUNT(DISTINCT contact_id),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY processing_ms)
FROM interactions_interaction WHERE created_at >= %s AND created_at < %s
"""


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 2)

    return {"p50_ms": pick(0.5), "p95_ms": pick(0.95), "max_ms": round(ordered[-1], 2), "runs": len(ordered)}


def time_service(query: StatisticsQuery, runs: int) -> tuple[dict, dict]:
    statistics_compute(query=query)  # warm the connection and the caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        body = statistics_compute(query=query)
        samples.append((time.perf_counter() - started) * 1000)
    return _percentiles(samples), body


def time_naive(start: datetime, end: datetime, runs: int) -> dict:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(NAIVE_SQL, [start, end])
            cursor.fetchall()
            cursor.execute(NAIVE_TOTALS_SQL, [start, end])
            cursor.fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    return _percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--naive-runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="Reuse the rows already loaded (skip loading).")
    parser.add_argument("--skip-rebuild", action="store_true", help="With --keep: reuse the rollups too.")
    args = parser.parse_args()

    _ensure_database()
    connection.close()
    call_command("migrate", verbosity=0)
    result: dict = {
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        result["host"]["postgresql"] = cursor.fetchone()[0].split(" on ")[0]
    existing = Interaction.objects.count()
    if not args.keep or existing == 0:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE interactions_interaction, interactions_statusupdate, interactions_message, "
                "interactions_contact, interactions_interactionhourlyrollup, interactions_interactiondailyrollup, "
                "interactions_contactdailysketch, interactions_rollupstate CASCADE"
            )
        print(f"loading {args.rows:,} interactions with COPY …", flush=True)
        result["load"] = generate(args.rows)
        print(f"  loaded in {result['load']['load_seconds']} s", flush=True)
    else:
        result["load"] = {"rows": existing, "reused": True}

    if args.keep and args.skip_rebuild:
        print("refreshing rollups (the current hour and the look-back) …", flush=True)
        started = time.perf_counter()
        refresh = rollups_refresh()
        result["rebuild"] = {"skipped": True, "refresh_seconds": round(time.perf_counter() - started, 1)}
    else:
        print("rebuilding rollups …", flush=True)
        started = time.perf_counter()
        refresh = rollups_refresh(full=True)
        result["rebuild"] = {"seconds": round(time.perf_counter() - started, 1), "hourly_rows": refresh.hourly_rows}
        print(f"  {refresh.days} days, {refresh.hourly_rows:,} hourly rows in {result['rebuild']['seconds']} s")

    # What autovacuum does shortly after a refresh in production; measured right away the tables' fresh dead
    # tuples and missing statistics would be timed instead of the query.
    with connection.cursor() as cursor:
        for table in (
            "interactions_interactionhourlyrollup",
            "interactions_interactiondailyrollup",
            "interactions_deliveryerrorrollup",
            "interactions_contactdailysketch",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
    # A fresh session, as a web worker would have: the refresh's long session is not what serves queries.
    connection.close()

    end = timezone.now()
    start = end - timedelta(days=90)
    queries = {
        "90d_utc_by_day": StatisticsQuery(start=start, end=end, group_by="day"),
        "90d_utc_by_intent": StatisticsQuery(start=start, end=end, group_by="intent"),
        "90d_utc_by_day_channel_filter": StatisticsQuery(start=start, end=end, group_by="day", channel="twilio"),
        "90d_nairobi_by_day_hourly_path": StatisticsQuery(
            start=start, end=end, group_by="day", tz=ZoneInfo("Africa/Nairobi")
        ),
    }
    result["service"] = {}
    for name, query in queries.items():
        figures, body = time_service(query, args.runs)
        figures["interactions"] = body["totals"]["interactions"]
        figures["segments"] = [s["source"] for s in body["rollups"]["segments"]]
        result["service"][name] = figures
        print(f"  service {name:34s} p50 {figures['p50_ms']:8.2f} ms  p95 {figures['p95_ms']:8.2f} ms", flush=True)
    result["naive_group_by"] = time_naive(start, end, args.naive_runs)
    print(
        f"  naive GROUP BY over the raw table        p50 {result['naive_group_by']['p50_ms']:8.2f} ms"
        f"  p95 {result['naive_group_by']['p95_ms']:8.2f} ms",
        flush=True,
    )
    result["target_p95_ms"] = 50
    result["met"] = result["service"]["90d_utc_by_day"]["p95_ms"] <= 50
    result["measured_at"] = datetime.now(UTC).isoformat()
    result["load_average"] = os.getloadavg()
    out = ROOT / "bench" / "results" / "statistics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
