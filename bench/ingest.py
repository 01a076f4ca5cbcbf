"""P1 ingest: throughput and latency of each signed webhook against two baselines, in one gunicorn.

For every target — (a) bare Django view, (b) minimal durable ingest (one INSERT + one LPUSH), ACS, Twilio and
Meta webhooks — in the same run, on the same server:
1. maximum throughput: wrk (or bench.loadgen.closed_loop without wrk), closed loop, fixed connections;
2. latency at half that load: bench.loadgen.open_loop at 50 % of the target's own maximum, p50/p95/p99
   measured from each request's due time.
Then every webhook's persisted inbound rows are counted against its 2xx answers (nothing lost under load).
Target: each webhook ≥ 70 % of (b)'s throughput, p99 ≤ 50 ms at half load. No worker runs: this is ingest only.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench import harness
from bench.loadgen import closed_loop, open_loop, summarize
from bench.signed import TARGETS, signed_requests, write_wrk_file

WEBHOOK_TARGETS = ("acs", "twilio", "meta")


def inbound_rows(env: dict[str, str], channel: str) -> int:
    import psycopg

    url = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM interactions_message WHERE direction = 'in' AND channel = %s", [channel]
        ).fetchone()
    return row[0]


def durable_rows(env: dict[str, str]) -> int:
    import psycopg

    from bench.baseline_table import TABLE

    url = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url) as connection:
        return connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


def run(*, quick: bool = False, targets: tuple[str, ...] = TARGETS) -> dict:
    duration = 5 if quick else 15
    connections = 16 if quick else 32
    per_target = 15_000 if quick else 60_000
    half_load_seconds = 5 if quick else 15
    env = harness.environment()
    harness.database_prepare(env)
    results: dict[str, dict] = {}
    use_wrk = shutil.which("wrk") is not None
    with harness.gunicorn(env) as (port, server_config), tempfile.TemporaryDirectory() as directory:
        offset = 0
        for target in targets:
            print(f"P1 {target}: building {per_target} signed requests", flush=True)
            requests = signed_requests(target, per_target, port=port, offset=offset)
            offset += per_target
            warmup = signed_requests(target, 300, port=port, offset=10_000_000 + offset)
            open_loop(host="127.0.0.1", port=port, requests=warmup, rate=300, connections=8)
            harness.database_truncate(env)

            if use_wrk:
                maximum = harness.wrk(
                    port,
                    write_wrk_file(requests, Path(directory) / f"{target}.txt"),
                    duration=duration,
                    connections=connections,
                )
            else:
                maximum = summarize(
                    closed_loop(
                        host="127.0.0.1", port=port, requests=requests, duration=duration, connections=connections
                    )
                )
            persisted = durable_rows(env) if target == "durable" else None
            if target in WEBHOOK_TARGETS:
                persisted = inbound_rows(env, target)
            time.sleep(1)  # let gunicorn's keep-alive connections from wrk close before the next phase
            rate = max(10.0, maximum["throughput_rps"] / 2)
            half = signed_requests(target, int(rate * half_load_seconds), port=port, offset=20_000_000 + offset)
            half_load = summarize(open_loop(host="127.0.0.1", port=port, requests=half, rate=rate, connections=64))
            half_load["rate_rps"] = round(rate, 1)
            results[target] = {"max": maximum, "half_load": half_load, "persisted": persisted}
            print(
                f"P1 {target}: {maximum['throughput_rps']} req/s max (p99 {maximum['latency_ms']['p99']} ms, "
                f"{maximum['errors']} errors); at {rate:.0f} req/s p50 {half_load['latency_ms']['p50']} ms "
                f"p99 {half_load['latency_ms']['p99']} ms; persisted {persisted} for {maximum['ok']} 2xx",
                flush=True,
            )
            harness.database_truncate(env)
    durable = results.get("durable", {}).get("max", {}).get("throughput_rps") or 0
    bare = results.get("bare", {}).get("max", {}).get("throughput_rps") or 0
    for target in WEBHOOK_TARGETS:
        if target not in results:
            continue
        entry = results[target]
        throughput = entry["max"]["throughput_rps"]
        entry["ratio_to_durable"] = round(throughput / durable, 3) if durable else None
        entry["ratio_to_bare"] = round(throughput / bare, 3) if bare else None
        entry["meets_target"] = bool(
            entry["ratio_to_durable"] is not None
            and entry["ratio_to_durable"] >= 0.7
            and entry["half_load"]["latency_ms"]["p99"] <= 50
            and entry["half_load"]["errors"] == 0
            and entry["persisted"] >= entry["max"]["ok"]
        )
    payload = {
        "benchmark": "P1 ingest",
        "load_generator": "wrk -t1 (max) + bench.loadgen open loop (half load)" if use_wrk else "bench.loadgen",
        "connections": connections,
        "duration_s": duration,
        "server": server_config,
        "targets": results,
        "target": "webhook >= 70% of durable baseline throughput; p99 <= 50 ms at half load",
    }
    return payload
