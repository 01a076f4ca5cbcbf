"""gunicorn settings for App Service (and the container image). Every value can be overridden from the env."""

from __future__ import annotations

import multiprocessing
import os

# App Service routes to the port in PORT (8000 by default for Python sites).
bind = f"0.0.0.0:{os.environ.get('PORT') or '8000'}"

# 2 x cores + 1 is gunicorn's rule of thumb; WEB_CONCURRENCY caps it so a small plan is not over-committed
# (each worker holds its own Django, database connection and telemetry exporter).
_by_cores = multiprocessing.cpu_count() * 2 + 1
_cap = int(os.environ.get("WEB_CONCURRENCY") or _by_cores)
workers = max(1, min(_by_cores, _cap))
# Threads let one worker overlap the slow parts of a request (provider calls from the send API).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or "4")

# Event Grid waits 30 s for a webhook answer; a request still running after 60 s is stuck, not slow.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or "60")
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or "30")
# Longer than the front end's idle timeout would be pointless; shorter makes it reconnect needlessly.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE") or "75")
# Recycle workers now and then so a slow leak never takes a site down; jitter keeps them from restarting together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS") or "2000")
max_requests_jitter = 200

# App Service's front end is the only peer that can reach the container, so its X-Forwarded-* are trusted.
forwarded_allow_ips = "*"
proxy_allow_ips = "*"

# Logs to stdout/stderr: App Service collects them (AppServiceConsoleLogs) and so does `docker logs`.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL") or "info"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# Load the app in each worker, not the master: OpenTelemetry exporters and DB connections must not be
# shared across fork().
preload_app = False
