#!/usr/bin/env bash
# App Service startup command of the web site (appCommandLine `bash deploy/web.sh`), and the container's.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${RELAY_SKIP_MIGRATE:-false}" != "true" ]; then
  bash deploy/migrate.sh
fi
exec "${PYTHON:-python}" -m gunicorn config.wsgi -c deploy/gunicorn.conf.py
