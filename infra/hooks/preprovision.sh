#!/bin/sh
# azd preprovision hook (posix): see preprovision.py.
exec sh "$(dirname "$0")/_venv.sh" preprovision
