"""Per-key mutual exclusion across processes: PostgreSQL advisory locks, thread locks on SQLite.

Used to process one contact's messages one at a time, in arrival order, across any number of workers.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


def _lock_id(namespace: str, key: str | int) -> int:
    digest = hashlib.blake2b(f"{namespace}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def advisory_lock(namespace: str, key: str | int) -> Iterator[None]:
    """Hold a session-level lock on (namespace, key) for the duration of the block.

    Session-level, not transaction-level, so that a block may commit several transactions
    (claim → provider call → record) while others wait. A crashed process releases it with its connection.
    """
    if connection.vendor == "postgresql":
        lock_id = _lock_id(namespace, key)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
        return
    name = f"{namespace}:{key}"
    with _local_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    with lock:
        yield
