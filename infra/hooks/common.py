"""Helpers shared by the azd hook scripts: azd environment values and the `az` CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time


def env(name: str, *, required: bool = True, default: str = "") -> str:
    """An azd environment value (azd exports them to hooks as environment variables)."""
    value = os.environ.get(name, default).strip()
    if required and not value:
        sys.exit(f"error: {name} is not set in the azd environment (azd env get-values)")
    return value


def az(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `az <args> -o json`. Never pass a secret in args: they show in the process list."""
    executable = shutil.which("az")
    if executable is None:
        sys.exit("error: the Azure CLI (az) is required by this hook: https://aka.ms/azure-cli")
    result = subprocess.run([executable, *args, "-o", "json"], capture_output=True, text=True, check=False)  # noqa: S603
    if check and result.returncode != 0:
        sys.exit(f"error: az {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result


def az_json(*args: str):
    output = az(*args).stdout.strip()
    return json.loads(output) if output else None


def retry(action, *, what: str, attempts: int = 20, delay_seconds: float = 15.0):
    """Retry `action` while RBAC role assignments propagate (they can take minutes after provisioning)."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except RetryableError as exc:
            if attempt == attempts:
                sys.exit(f"error: {what}: {exc}")
            print(f"  {what}: {exc} (retrying in {delay_seconds:.0f} s, {attempt}/{attempts})")
            time.sleep(delay_seconds)
    return None


class RetryableError(Exception):
    pass


def banner(lines: list[str]) -> None:
    width = max(len(line) for line in lines) + 4
    print("\n" + "=" * width)
    for line in lines:
        print(f"  {line}")
    print("=" * width + "\n")
