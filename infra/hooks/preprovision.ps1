# azd preprovision hook (Windows): see preprovision.py.
& (Join-Path $PSScriptRoot '_venv.ps1') -Name 'preprovision'
exit $LASTEXITCODE
