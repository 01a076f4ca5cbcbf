"""The worker site's HTTP answer for App Service: GET / or /health/ on $PORT.

200 when the broker (Redis) answers a ping and the worker's heartbeat (cache key worker:heartbeat, written
every WORKER_HEARTBEAT_SECONDS by apps.interactions.middleware.WorkerMaintenance) is younger than
WORKER_HEARTBEAT_MAX_AGE_SECONDS; 503 otherwise, so App Service's health check replaces a stuck instance.
During the first WORKER_HEARTBEAT_GRACE_SECONDS a missing heartbeat reads "starting" (200): the worker is
still booting. Started by deploy/worker.sh; exits when its parent (the worker) is gone.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

HEARTBEAT_KEY = "worker:heartbeat"
STARTED = time.monotonic()
MAX_AGE_SECONDS = float(os.environ.get("WORKER_HEARTBEAT_MAX_AGE_SECONDS") or "60")
GRACE_SECONDS = float(os.environ.get("WORKER_HEARTBEAT_GRACE_SECONDS") or "120")


def _broker() -> dict:
    import dramatiq

    broker = dramatiq.get_broker()
    started = time.perf_counter()
    try:
        client = getattr(broker, "client", None)
        if client is not None:
            client.ping()
    except Exception as exc:
        return {"status": "down", "backend": type(broker).__name__, "error": f"{type(exc).__name__}: {exc}"[:300]}
    latency = round((time.perf_counter() - started) * 1000, 1)
    return {"status": "up", "backend": type(broker).__name__, "latency_ms": latency}


def _heartbeat() -> dict:
    from django.core.cache import cache

    try:
        value = cache.get(HEARTBEAT_KEY)
    except Exception as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    if value is None:
        starting = time.monotonic() - STARTED < GRACE_SECONDS
        return {"status": "starting" if starting else "missing", "last": None}
    try:
        beat = datetime.fromisoformat(str(value))
    except ValueError:
        return {"status": "invalid", "last": str(value)[:64]}
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - beat).total_seconds()
    return {
        "status": "up" if age <= MAX_AGE_SECONDS else "stale",
        "last": beat.isoformat(),
        "age_seconds": round(age, 1),
    }


def health() -> tuple[int, dict]:
    checks = {"broker": _broker(), "heartbeat": _heartbeat()}
    healthy = checks["broker"]["status"] == "up" and checks["heartbeat"]["status"] in ("up", "starting")
    status = "healthy" if healthy else "unhealthy"
    if healthy and checks["heartbeat"]["status"] == "starting":
        status = "starting"
    body = {"status": status, "role": "worker", "timestamp": datetime.now(UTC).isoformat(), "checks": checks}
    return (200 if healthy else 503), body


class Handler(BaseHTTPRequestHandler):
    server_version = "relay-worker-health"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/", "/health", "/health/"):
            self._send(404, {"error": {"code": "not_found", "message": "only /health/ is served", "details": {}}})
            return
        self._send(*health())

    def _send(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:
        # App Service pings every minute; log only failures.
        if len(args) > 1 and str(args[1]).startswith(("4", "5")):
            sys.stderr.write("worker-health: " + (format % args) + "\n")


def _exit_with_parent(server: ThreadingHTTPServer, parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(2)
    server.shutdown()


def main() -> int:
    import django

    django.setup()
    port = int(os.environ.get("PORT") or "8000")
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 (the platform pings the container)
    server.daemon_threads = True
    if os.environ.get("WORKER_HEALTH_EXIT_WITH_PARENT", "true") != "false":
        threading.Thread(target=_exit_with_parent, args=(server, os.getppid()), daemon=True).start()
    print(f"worker-health: listening on :{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
