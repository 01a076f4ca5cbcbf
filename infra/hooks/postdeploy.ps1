# azd postdeploy hook (Windows): see postdeploy.py.
& (Join-Path $PSScriptRoot '_venv.ps1') -Name 'postdeploy'
exit $LASTEXITCODE
