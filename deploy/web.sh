#!/usr/bin/env bash
# App Service startup command of the web site (appCommandLine `bash deploy/web.sh`), and the container's.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
if [ "${RELAY_SKIP_MIGRATE:-false}" != "true" ]; then
  bash deploy/migrate.sh
fi
# Oryx (App Service build) and the Dockerfile collect static files at build time; when that did not happen
# (no manifest), collect them now rather than serve pages without CSS.
if [ ! -f staticfiles/staticfiles.json ]; then
  "$PYTHON" manage.py collectstatic --noinput --verbosity 0
fi
exec "$PYTHON" -m gunicorn config.wsgi -c deploy/gunicorn.conf.py
