#!/usr/bin/env bash
# Migrations, once per deployed build (deploy/migrate_once.py holds the lock and the marker).
# Safe to run from every instance at start: the others wait for the lock, then see the marker and skip.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" deploy/migrate_once.py
