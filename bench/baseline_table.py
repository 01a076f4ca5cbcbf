"""The durable-ingest baseline's table and queue (kept apart from the views so the harness imports no Django)."""

from __future__ import annotations

TABLE = "bench_ingest"
QUEUE = "bench:ingest"
TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, provider_message_id text UNIQUE NOT NULL, "
    "body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)
