"""Health: database, cache and broker. 200 when all are up, 503 otherwise."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check() or {}
        return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1), **detail}
    except Exception as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}


def _cache() -> dict:
    cache.set("health:ping", "1", timeout=10)
    if cache.get("health:ping") != "1":
        raise RuntimeError("cache did not return what was written")
    return {"backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def _broker() -> dict:
    import dramatiq

    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()
    detail = {"backend": type(broker).__name__}
    detail["worker_heartbeat"] = cache.get("worker:heartbeat")
    # The worker that sends deferred webhook deliveries' tasks (WEBHOOK_DEFERRED_INGEST): {at, host, pid}, or
    # null while no worker holds that role (waiting deliveries then wait; admin lists them).
    detail["delivery_pump"] = cache.get("worker:delivery-pump")
    return detail


@require_GET
def health(request):
    checks = {"database": _timed(_database), "cache": _timed(_cache), "broker": _timed(_broker)}
    healthy = all(check["status"] == "up" for check in checks.values())
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": timezone.now().isoformat(),
        "version": "1.0.0",
        "checks": checks,
    }
    return JsonResponse(body, status=200 if healthy else 503)
