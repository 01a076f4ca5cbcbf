"""Keeps the statistics rollups current: a worker thread refreshes them every ROLLUP_REFRESH_INTERVAL_SECONDS.

One worker of the cluster wins each interval (cache.add is atomic in Redis); the refresh itself also holds an
advisory lock. Loaded while the broker is built (before Django's apps are ready): no model imports at module level.
"""

from __future__ import annotations

import logging
import threading

import dramatiq

logger = logging.getLogger(__name__)

REFRESH_LOCK_KEY = "statistics:rollups-refresh-lock"


def rollups_refresh_tick() -> bool:
    """Refresh the rollups if no other worker did in this interval. Returns whether this call refreshed."""
    from django.conf import settings
    from django.core.cache import cache

    from .services import rollups_refresh

    if not cache.add(REFRESH_LOCK_KEY, "1", timeout=settings.ROLLUP_REFRESH_INTERVAL_SECONDS):
        return False
    rollups_refresh()
    return True


class RollupsRefresher(dramatiq.Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker, worker) -> None:
        self._stop.clear()
        threading.Thread(target=self._run, name="relay-rollups-refresh", daemon=True).start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()

    def _run(self) -> None:
        from django.conf import settings
        from django.db import close_old_connections, connection

        # The first round waits one interval, so a worker restart loop does not hammer the database.
        while not self._stop.wait(settings.ROLLUP_REFRESH_INTERVAL_SECONDS):
            try:
                close_old_connections()
                rollups_refresh_tick()
            except Exception:
                logger.exception("statistics rollups refresh failed")
            finally:
                connection.close()
