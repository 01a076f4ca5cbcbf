"""Apply migrations once per deployed build, whatever the number of instances starting at the same time.

Every instance runs this before gunicorn. Under a PostgreSQL advisory lock (instances wait for the one that
migrates), it compares the build id with the one recorded in relay_deploy_marker: equal means this build is
already migrated and the instance starts at once; different means migrate, grant the worker identity its
row privileges on the new tables, and record the id.

The build id is RELAY_BUILD_ID when the pipeline sets one, else a digest of every migration file and the
Django version, i.e. exactly what `migrate` depends on.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

MARKER_TABLE = "relay_deploy_marker"


def build_id() -> str:
    explicit = os.environ.get("RELAY_BUILD_ID", "").strip()
    if explicit:
        return explicit
    import django

    digest = hashlib.sha256(django.get_version().encode())
    for path in sorted(ROOT.glob("apps/**/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return f"migrations-{digest.hexdigest()[:20]}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def worker_grants(cursor) -> list[str]:
    """Row privileges for the roles in DATABASE_GRANT_ROLES (the worker identity) on every table the
    migrating identity owns, now and in the future. Returns the roles granted."""
    roles = [role.strip() for role in os.environ.get("DATABASE_GRANT_ROLES", "").split(",") if role.strip()]
    for role in roles:
        quoted = _quote(role)
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}"
        )
        cursor.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {quoted}")
    return roles


def main() -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from apps.core.locks import advisory_lock

    current = build_id()
    started = time.monotonic()
    with advisory_lock("deploy", "migrate"):
        waited = time.monotonic() - started
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
                "(name VARCHAR(32) PRIMARY KEY, build_id VARCHAR(200) NOT NULL, applied_at VARCHAR(40) NOT NULL)"
            )
            cursor.execute(f"SELECT build_id FROM {MARKER_TABLE} WHERE name = %s", ["migrate"])
            row = cursor.fetchone()
        if row and row[0] == current:
            print(f"migrate: build {current} already migrated (waited {waited:.1f} s for the lock); skipping")
            return 0
        print(f"migrate: applying migrations for build {current} (previous: {row[0] if row else 'none'})")
        call_command("migrate", interactive=False, verbosity=1)
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                granted = worker_grants(cursor)
                if granted:
                    print(f"migrate: row privileges granted to {', '.join(granted)}")
            cursor.execute(f"DELETE FROM {MARKER_TABLE} WHERE name = %s", ["migrate"])
            cursor.execute(
                f"INSERT INTO {MARKER_TABLE} (name, build_id, applied_at) VALUES (%s, %s, %s)",
                ["migrate", current, datetime.now(UTC).isoformat()],
            )
    print(f"migrate: build {current} recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
