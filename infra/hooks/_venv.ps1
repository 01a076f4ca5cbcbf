# Shared by the Windows hooks: run infra/hooks/<name>.py in a venv with the hooks' own requirements.
param([Parameter(Mandatory = $true)][string]$Name)
$ErrorActionPreference = 'Stop'
$hooksDir = $PSScriptRoot
$venv = Join-Path $hooksDir '..\..\.venv-azd-hooks'
$python = Join-Path $venv 'Scripts\python.exe'
if (-not (Test-Path $python)) {
  $base = (Get-Command python -ErrorAction SilentlyContinue) ?? (Get-Command py -ErrorAction Stop)
  & $base.Source -m venv $venv
  if ($LASTEXITCODE -ne 0) { throw 'could not create the hooks venv' }
}
& $python -m pip install --quiet --disable-pip-version-check -r (Join-Path $hooksDir 'requirements.txt')
if ($LASTEXITCODE -ne 0) { throw 'pip install failed' }
& $python (Join-Path $hooksDir "$Name.py")
exit $LASTEXITCODE
