"""apps.core.db.postgresql: the managed identity's Entra token is the PostgreSQL password.

App Service's identity endpoint is emulated at the network edge; the local PostgreSQL trusts 127.0.0.1, so
the connection succeeding shows the backend works end to end, and the connection parameters show the token
is what would be sent as the password to Azure Database for PostgreSQL.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlsplit

import pytest

from .bicep import ROOT
from .emulators import AppServiceManagedIdentity

PROBE = """
import json
from django.db import connections
connection = connections["default"]
params = connection.get_connection_params()
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    one = cursor.fetchone()[0]
connection.close()
second = connection.get_connection_params()
print(json.dumps({"module": type(connection).__module__, "password": params["password"],
                  "second_password": second["password"], "query": one}))
"""


@pytest.fixture
def identity():
    emulator = AppServiceManagedIdentity(token="eyJ0eXAiOiJKV1QiLCJhbGciOi-emulated").start()
    yield emulator
    emulator.stop()


def run_probe(identity: AppServiceManagedIdentity, **extra: str) -> dict:
    import subprocess

    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEY": "k2Xw7n0aWmG2bY1q3jv5m8qR9tU4xZ6cA0dE1fH2iJ4=",
        # The maintenance database exists on every server (the test database belongs to pytest-django).
        "DATABASE_URL": urlsplit(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl(),
        "DATABASE_ENTRA_AUTH": "true",
        "IDENTITY_ENDPOINT": identity.endpoint,
        "IDENTITY_HEADER": identity.header,
        **extra,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_managed_identity_token_for_azure_postgres_is_the_password_and_is_reused(identity):
    probe = run_probe(identity)

    assert probe == {
        "module": "apps.core.db.postgresql.base",
        "password": "eyJ0eXAiOiJKV1QiLCJhbGciOi-emulated",
        "second_password": "eyJ0eXAiOiJKV1QiLCJhbGciOi-emulated",
        "query": 1,
    }
    # One token request for both connections, for the PostgreSQL resource, with App Service's header.
    [request] = identity.requests
    assert request.path == "/msi/token"
    assert request.query["resource"] == ["https://ossrdbms-aad.database.windows.net"]
    assert request.query["api-version"] == ["2019-08-01"]
    assert request.headers["X-IDENTITY-HEADER"] == identity.header


def test_no_identity_means_no_connection_rather_than_an_empty_password(identity):
    import subprocess

    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEY": "k2Xw7n0aWmG2bY1q3jv5m8qR9tU4xZ6cA0dE1fH2iJ4=",
        # The maintenance database exists on every server (the test database belongs to pytest-django).
        "DATABASE_URL": urlsplit(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl(),
        "DATABASE_ENTRA_AUTH": "true",
        "IDENTITY_ENDPOINT": identity.endpoint,
        "IDENTITY_HEADER": "wrong-header",
        # Keep DefaultAzureCredential from finding a developer login on this machine.
        "AZURE_CONFIG_DIR": "/nonexistent",
        "AZD_CONFIG_DIR": "/nonexistent",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ClientAuthenticationError" in result.stderr or "CredentialUnavailableError" in result.stderr
    assert identity.refused and identity.requests == []
