"""The delivery pump: a worker thread that turns deferred webhook deliveries into materialize tasks as soon as
they are committed, so the webhook itself never calls the broker (services/deferred.py).

The webhook's INSERT issues `NOTIFY relay_inbound_delivery, '<id>'`, which PostgreSQL delivers on commit. In
each worker process this thread holds a database connection and tries to take an advisory lock: the one process
that holds it LISTENs and sends a task per notification; the others stand by and retry every
DELIVERY_PUMP_STANDBY_SECONDS. The lock belongs to the connection, so a pump whose process dies (or whose
connection drops) frees it for another within that interval.

Nothing waits on a notification alone: a pump that takes over first sends a task for every sender with waiting
deliveries (they may have come while no one listened), and after a failed enqueue (the broker away) it sends
nothing more per notification but catches up the same way every second until the broker answers. The sweeper
stays behind all of this.

Loaded by django_dramatiq while the broker is built, so nothing here imports models at module level.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time

import dramatiq

logger = logging.getLogger(__name__)

# pg_try_advisory_lock key of the pumping worker ("RELAY" in ASCII); one per database.
PUMP_LOCK_KEY = 0x52454C4159
CATCH_UP_RETRY_SECONDS = 1.0
IDLE_CHECK_SECONDS = 30.0  # a quiet leader checks its connection this often (a dead peer sends no EOF)
# The leader's heartbeat (cache key, read by /health/): when it last answered, and where it runs.
HEARTBEAT_KEY = "worker:delivery-pump"
HEARTBEAT_SECONDS = 10.0


class DeliveryPump(dramatiq.Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_read, self._wake_write = -1, -1
        # Set while this pump holds the lock and listens (tests and the log read it).
        self.leading = threading.Event()

    # Dramatiq hooks ---------------------------------------------------------------------------------------------

    def after_worker_boot(self, broker, worker) -> None:
        from django.db import connections

        if connections["default"].vendor == "postgresql":  # deferral only happens on PostgreSQL
            self.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self.stop()

    # Lifecycle --------------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="relay-delivery-pump", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it: its connection is closed when this returns."""
        if self._thread is None:
            return
        self._stop.set()
        os.write(self._wake_write, b"x")
        self._thread.join(timeout)
        self._thread = None
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)

    # The thread -------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        from django.conf import settings
        from django.db import connection

        while not self._stop.is_set():
            try:
                if self._lead(connection):
                    continue  # the leader was stopped, or lost its connection: reconnect at once
            except Exception:
                logger.exception("delivery pump: database connection lost; retrying")
            finally:
                self.leading.clear()
                connection.close()  # frees the advisory lock too
            self._stop.wait(settings.DELIVERY_PUMP_STANDBY_SECONDS)

    def _lead(self, connection) -> bool:
        """Take the lock and pump until stopped; False at once if another worker holds it."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [PUMP_LOCK_KEY])
            if not cursor.fetchone()[0]:
                return False
            from .services.deferred import NOTIFY_CHANNEL

            cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self.leading.set()
        logger.info("delivery pump: this worker sends the deferred webhook deliveries' tasks")
        try:
            self._pump(connection.connection)
        finally:
            _heartbeat(clear=True)  # no longer the pump: /health/ shows none until another takes over
        return True

    def _pump(self, raw) -> None:
        from .services.deferred import MATERIALIZE_ACTOR, deliveries_wake
        from .services.enqueue import enqueue_now

        behind = True  # what waited before this pump listened
        next_catch_up = next_beat = 0.0
        last_activity = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_beat:
                _heartbeat()
                next_beat = time.monotonic() + HEARTBEAT_SECONDS
            # Notifications that arrived during a query are in psycopg's backlog: take them before waiting.
            ids = []
            for notify in raw.notifies(timeout=0):
                try:
                    ids.append(int(notify.payload))
                except ValueError:
                    logger.warning("delivery pump: ignored a notification with payload %r", notify.payload[:40])
            if ids and not behind:
                for delivery_id in ids:
                    if not enqueue_now(MATERIALIZE_ACTOR, delivery_id):
                        behind = True
                        break
            if behind and time.monotonic() >= next_catch_up:
                sent, complete = deliveries_wake()
                behind = not complete
                next_catch_up = time.monotonic() + CATCH_UP_RETRY_SECONDS
                if sent:
                    logger.info("delivery pump: sent tasks for %s senders' waiting deliveries", sent)
                continue
            wait = CATCH_UP_RETRY_SECONDS if behind else HEARTBEAT_SECONDS
            ready, _, _ = select.select([raw.fileno(), self._wake_read], [], [], wait)
            if self._wake_read in ready:
                return
            if ready:
                last_activity = time.monotonic()
            elif time.monotonic() - last_activity >= IDLE_CHECK_SECONDS:
                raw.execute("SELECT 1")  # raises on a dead connection: the thread reconnects
                last_activity = time.monotonic()


def _heartbeat(*, clear: bool = False) -> None:
    from django.core.cache import cache
    from django.utils import timezone

    try:
        if clear:
            cache.delete(HEARTBEAT_KEY)
            return
        beat = {"at": timezone.now().isoformat(), "host": socket.gethostname(), "pid": os.getpid()}
        cache.set(HEARTBEAT_KEY, beat, timeout=int(HEARTBEAT_SECONDS * 6))
    except Exception:
        logger.warning("delivery pump: could not write its heartbeat", exc_info=True)
