"""Say clearly whether the PostgreSQL and Redis the tests use are reachable, and how to start them."""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlparse

HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
}


def reachable(url: str, default_port: int) -> tuple[str, int, bool]:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return host, port, True
    except OSError:
        return host, port, False


def main() -> int:
    services = [
        ("PostgreSQL", os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay"), 5432),
        ("Redis", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), 6379),
    ]
    failed = False
    for name, url, port in services:
        host, port, ok = reachable(url, port)
        if not ok:
            failed = True
            print(f"{name} is not reachable at {host}:{port}. Start it with:\n  {HINTS[name]}", file=sys.stderr)
    if not failed:
        database_ensure(services[0][1])
    return 1 if failed else 0


def database_ensure(url: str) -> None:
    """Create the database DATABASE_URL names when the server lacks it (pytest-django makes test_<name>
    itself, but migration checks connect to <name>)."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/") or "relay"
    maintenance = parsed._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                connection.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
                print(f"created database {name}")
    except psycopg.Error as exc:
        print(f"note: could not check database {name}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
