"""azd preprovision: record who deploys (AZURE_PRINCIPAL_NAME / _TYPE), the PostgreSQL Entra administrator.

azd sets AZURE_PRINCIPAL_ID itself; the administrator also needs its name. For a service principal (CI),
set both yourself: azd env set AZURE_PRINCIPAL_NAME <display name>; azd env set AZURE_PRINCIPAL_TYPE ServicePrincipal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def main() -> None:
    if os.environ.get("AZURE_PRINCIPAL_NAME", "").strip():
        return
    az, azd = shutil.which("az"), shutil.which("azd")
    if az is None or azd is None:
        sys.exit("error: set AZURE_PRINCIPAL_NAME (azd env set AZURE_PRINCIPAL_NAME <your UPN>) or install az")
    result = subprocess.run(  # noqa: S603
        [az, "ad", "signed-in-user", "show", "--query", "userPrincipalName", "-o", "tsv"],
        capture_output=True,
        text=True,
        check=False,
    )
    name = result.stdout.strip()
    if result.returncode != 0 or not name:
        sys.exit("error: cannot read the signed-in user (az login?); or azd env set AZURE_PRINCIPAL_NAME <name>")
    subprocess.run([azd, "env", "set", "AZURE_PRINCIPAL_NAME", name], check=True)  # noqa: S603
    subprocess.run([azd, "env", "set", "AZURE_PRINCIPAL_TYPE", "User"], check=True)  # noqa: S603
    print(f"PostgreSQL Entra administrator: {name}")


if __name__ == "__main__":
    main()
