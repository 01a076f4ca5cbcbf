#!/bin/sh
# azd postdeploy hook (posix): see postdeploy.py.
exec sh "$(dirname "$0")/_venv.sh" postdeploy
