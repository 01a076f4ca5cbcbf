"""Django's PostgreSQL backend, authenticating with a Microsoft Entra access token when no password is set.

On Azure Database for PostgreSQL with Entra authentication the "password" is an access token for
https://ossrdbms-aad.database.windows.net, valid about an hour. Each new connection asks for one; the token is
cached until five minutes before it expires, and one DefaultAzureCredential serves the whole process (it
finds the App Service managed identity, or the developer's `az login`).
"""

from __future__ import annotations

import threading
import time

from django.db.backends.postgresql import base

ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
# Refresh this long before expiry, so a connection opened just before expiry is never refused.
REFRESH_MARGIN_SECONDS = 300

_lock = threading.Lock()
_credential = None
_token = None


def entra_token() -> str:
    """A current access token for Azure Database for PostgreSQL. Raises azure.identity's
    CredentialUnavailableError / ClientAuthenticationError when no identity can provide one."""
    global _credential, _token
    with _lock:
        if _token is None or _token.expires_on - REFRESH_MARGIN_SECONDS <= time.time():
            if _credential is None:
                from azure.identity import DefaultAzureCredential

                _credential = DefaultAzureCredential()
            _token = _credential.get_token(ENTRA_SCOPE)
        return _token.token


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if not params.get("password"):
            params["password"] = entra_token()
        return params
