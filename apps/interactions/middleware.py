"""Dramatiq middleware that keeps a worker honest: a heartbeat the health check reads, and the sweeper.

Loaded by django_dramatiq while the broker is built (before Django's apps are ready), so nothing here may
import models at module level.
"""

from __future__ import annotations

import logging
import threading

import dramatiq

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "worker:heartbeat"
SWEEPER_LOCK_KEY = "worker:sweeper-lock"
PURGE_LOCK_KEY = "worker:purge-lock"


def maintenance_tick(*, sweep: bool, purge: bool) -> None:
    """One round: heartbeat always; sweep / purge when due and no other worker took the turn."""
    from django.conf import settings
    from django.core.cache import cache
    from django.utils import timezone

    from .services import payloads_purge, sweeper_run

    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), timeout=max(60, settings.WORKER_HEARTBEAT_SECONDS * 6))
    # cache.add is atomic in Redis: one worker of the whole cluster wins each interval.
    if sweep and cache.add(SWEEPER_LOCK_KEY, "1", timeout=settings.SWEEPER_INTERVAL_SECONDS):
        sweeper_run(older_than_seconds=settings.SWEEPER_STALE_SECONDS)
    if purge and cache.add(PURGE_LOCK_KEY, "1", timeout=24 * 3600):
        payloads_purge()


class WorkerMaintenance(dramatiq.Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="relay-worker-maintenance", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()

    def _run(self) -> None:
        from django.conf import settings
        from django.db import close_old_connections, connection

        beat = settings.WORKER_HEARTBEAT_SECONDS
        rounds = 0
        while not self._stop.is_set():
            try:
                close_old_connections()
                every = max(1, settings.SWEEPER_INTERVAL_SECONDS // max(1, beat))
                maintenance_tick(sweep=rounds % every == 0, purge=rounds % every == 0)
            except Exception:
                # Redis or the database briefly away: try again next round, never kill the worker.
                logger.exception("worker maintenance round failed")
            finally:
                connection.close()
            rounds += 1
            self._stop.wait(beat)
