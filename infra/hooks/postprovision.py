"""azd postprovision: generate the app's secrets in Key Vault once, and create the PostgreSQL roles of the
web and worker managed identities (Entra authentication, no passwords).

Idempotent: secrets that exist are never overwritten (rotation is a deliberate act, see README), roles that
exist are left alone, grants are re-applied.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RetryableError, az, env, retry

GENERATED_SECRETS = {
    "DJANGO-SECRET-KEY": lambda: secrets.token_urlsafe(50),
    # A Fernet key is 32 random bytes, urlsafe-base64 encoded.
    "FIELD-ENCRYPTION-KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    # Travels in the webhook's query string (?code=): URL-safe characters only.
    "ACS-EVENTGRID-SECRET": lambda: secrets.token_urlsafe(32),
}
FIREWALL_RULE = "azd-postprovision-operator"
ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"


def secret_exists(vault: str, name: str) -> bool:
    result = az("keyvault", "secret", "show", "--vault-name", vault, "--name", name, "--query", "id", check=False)
    if result.returncode == 0:
        return True
    if "SecretNotFound" in result.stderr or "was not found" in result.stderr:
        return False
    raise RetryableError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "unknown error")


def secret_store(vault: str, name: str, value: str) -> None:
    # Through a private temporary file, not --value: command lines are visible to other local users.
    with tempfile.NamedTemporaryFile("w", delete=False, encoding="utf-8") as handle:
        handle.write(value)
        path = handle.name
    try:
        os.chmod(path, 0o600)
        result = az(
            "keyvault",
            "secret",
            "set",
            "--vault-name",
            vault,
            "--name",
            name,
            "--file",
            path,
            "--encoding",
            "utf-8",
            "--query",
            "id",
            check=False,
        )
    finally:
        os.unlink(path)
    if result.returncode != 0:
        raise RetryableError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "unknown error")


def secrets_generate(vault: str) -> None:
    for name, generate in GENERATED_SECRETS.items():
        if retry(lambda name=name: secret_exists(vault, name), what=f"reading {name}"):
            print(f"  {name}: present, kept")
            continue
        retry(lambda name=name, generate=generate: secret_store(vault, name, generate()), what=f"storing {name}")
        print(f"  {name}: generated")


def operator_ip() -> str:
    override = os.environ.get("POSTGRES_CLIENT_IP", "").strip()
    if override:
        return override
    with urllib.request.urlopen("https://api.ipify.org", timeout=10) as response:
        return response.read().decode().strip()


def postgres_roles() -> None:
    import psycopg
    from azure.identity import AzureCliCredential
    from psycopg import sql

    host = env("POSTGRES_HOST")
    server = env("POSTGRES_SERVER_NAME")
    group = env("AZURE_RESOURCE_GROUP")
    admin = env("POSTGRES_ADMIN_NAME")
    database = env("POSTGRES_DATABASE", default="relay")
    web, worker = env("SERVICE_WEB_NAME"), env("SERVICE_WORKER_NAME")

    ip = operator_ip()
    print(f"  opening the PostgreSQL firewall to {ip} for the role setup")
    az(
        "postgres",
        "flexible-server",
        "firewall-rule",
        "create",
        "--resource-group",
        group,
        "--name",
        server,
        "--rule-name",
        FIREWALL_RULE,
        "--start-ip-address",
        ip,
        "--end-ip-address",
        ip,
    )
    try:
        token = AzureCliCredential().get_token(ENTRA_SCOPE).token

        def connect(dbname: str):
            try:
                return psycopg.connect(
                    host=host,
                    dbname=dbname,
                    user=admin,
                    password=token,
                    sslmode="require",
                    autocommit=True,
                    connect_timeout=15,
                )
            except psycopg.OperationalError as exc:
                raise RetryableError(str(exc).strip()) from exc

        with retry(lambda: connect("postgres"), what="connecting as the Entra admin") as conn:
            for role in (web, worker):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
                if exists:
                    print(f"  role {role}: present")
                    continue
                # The role name is the managed identity's display name, which is the site name.
                conn.execute("SELECT * FROM pgaadauth_create_principal(%s, false, false)", [role])
                print(f"  role {role}: created")
        with retry(lambda: connect(database), what=f"connecting to {database}") as conn:
            ident = sql.Identifier
            statements = [
                # The web identity runs the migrations, so it owns the tables.
                ("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}", (ident(database), ident(web))),
                ("GRANT USAGE, CREATE ON SCHEMA public TO {}", (ident(web),)),
                # The worker reads and writes rows, never changes the schema. Grants on tables created later
                # are made by the web identity itself after each migration (deploy/migrate_once.py).
                ("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}", (ident(database), ident(worker))),
                ("GRANT USAGE ON SCHEMA public TO {}", (ident(worker),)),
            ]
            for template, names in statements:
                conn.execute(sql.SQL(template).format(*names))
            print(f"  grants on {database}: applied")
    finally:
        az(
            "postgres",
            "flexible-server",
            "firewall-rule",
            "delete",
            "--resource-group",
            group,
            "--name",
            server,
            "--rule-name",
            FIREWALL_RULE,
            "--yes",
            check=False,
        )
        print("  PostgreSQL firewall closed again")


def main() -> None:
    vault = env("AZURE_KEY_VAULT_NAME")
    print(f"Key Vault {vault}: generating missing secrets")
    secrets_generate(vault)
    if os.environ.get("POSTGRES_PASSWORDLESS", "true").lower() != "false":
        print("PostgreSQL: Entra roles for the web and worker identities")
        postgres_roles()


if __name__ == "__main__":
    main()
