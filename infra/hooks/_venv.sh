#!/bin/sh
# Shared by the posix hooks: run infra/hooks/<name>.py in a venv with the hooks' own requirements.
set -eu
HOOKS_DIR=$(cd "$(dirname "$0")" && pwd)
VENV="$HOOKS_DIR/../../.venv-azd-hooks"
PYTHON=$(command -v python3 || command -v python)
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HOOKS_DIR/requirements.txt"
exec "$VENV/bin/python" "$HOOKS_DIR/$1.py"
