# azd postprovision hook (Windows): see postprovision.py.
& (Join-Path $PSScriptRoot '_venv.ps1') -Name 'postprovision'
exit $LASTEXITCODE
