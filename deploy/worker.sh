#!/usr/bin/env bash
# App Service startup command of the worker site (appCommandLine `bash deploy/worker.sh`).
# App Service only keeps a site running that answers HTTP on $PORT, so next to the Dramatiq worker runs
# deploy/worker_health.py: 200 while the broker answers and the worker's heartbeat is fresh, 503 otherwise.
# It exits by itself when the worker (its parent, after exec) goes away.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
"$PYTHON" deploy/worker_health.py &
exec "$PYTHON" manage.py rundramatiq \
  --processes "${DRAMATIQ_PROCESSES:-1}" \
  --threads "${DRAMATIQ_THREADS:-8}" \
  --worker-shutdown-timeout "${DRAMATIQ_SHUTDOWN_TIMEOUT_MS:-30000}"
