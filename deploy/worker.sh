#!/usr/bin/env bash
# App Service startup command of the worker site (appCommandLine `bash deploy/worker.sh`).
# App Service only keeps a site running that answers HTTP on $PORT, so next to the Dramatiq worker runs
# deploy/worker_health.py: 200 while the broker answers and the worker's heartbeat is fresh, 503 otherwise.
# It exits by itself when the worker (its parent, after exec) goes away.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
"$PYTHON" deploy/worker_health.py &
# Dramatiq's Redis consumer backs off between empty polls up to this many ms (its default, 1,000, let a message
# that arrives on a quiet queue wait up to a second before anyone fetched it). 50 ms bounds that wait for
# ~3 % of a core in idle polling; DRAMATIQ_WORKER_TIMEOUT_MS trades one for the other.
export dramatiq_worker_timeout="${DRAMATIQ_WORKER_TIMEOUT_MS:-50}"
exec "$PYTHON" manage.py rundramatiq \
  --processes "${DRAMATIQ_PROCESSES:-1}" \
  --threads "${DRAMATIQ_THREADS:-8}" \
  --worker-shutdown-timeout "${DRAMATIQ_SHUTDOWN_TIMEOUT_MS:-30000}"
