#!/bin/sh
# azd postprovision hook (posix): see postprovision.py.
exec sh "$(dirname "$0")/_venv.sh" postprovision
