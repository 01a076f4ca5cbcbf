"""An in-process Dramatiq worker for `make run` (stub broker, no separate worker process).

It runs every queue (default, outbound, ai). The broker's WorkerMaintenance middleware starts the heartbeat
and the sweeper when this worker boots, exactly as in a `rundramatiq` worker.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)
_started = threading.Event()


def inprocess_worker_start() -> None:
    if _started.is_set():
        return
    _started.set()
    import dramatiq

    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=2, worker_timeout=200)
    worker.start()
    logger.info("in-process Dramatiq worker started")
