"""Azure endpoints the deployed processes call, emulated at the network edge for the deploy tests."""

from __future__ import annotations

import gzip
import json
import time

from tests.emulators.base import Emulator, RecordedRequest, Reply


class AppServiceManagedIdentity(Emulator):
    """App Service's local token endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER, api-version 2019-08-01)."""

    name = "app-service-identity"
    header = "emulated-identity-header"

    def __init__(self, *, token: str = "entra-token-1", lifetime_seconds: int = 3600):
        super().__init__()
        self.token, self.lifetime_seconds = token, lifetime_seconds

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/msi/token"

    def authorize(self, request: RecordedRequest) -> Reply | None:
        if request.headers.get("X-IDENTITY-HEADER") != self.header:
            return Reply(401, {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER missing"})
        return None

    def route(self, request: RecordedRequest) -> Reply:
        if request.method != "GET" or request.path != "/msi/token":
            return Reply(404, {"error": "not found"})
        resource = request.query.get("resource", [""])[0]
        return Reply(
            200,
            {
                "access_token": self.token,
                "expires_on": str(int(time.time()) + self.lifetime_seconds),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": "00000000-0000-0000-0000-000000000001",
            },
        )


class ApplicationInsightsIngestion(Emulator):
    """Application Insights' ingestion endpoint: POST /v2.1/track with a JSON array of envelopes."""

    name = "appinsights-ingestion"

    @property
    def connection_string(self) -> str:
        return (
            "InstrumentationKey=00000000-0000-0000-0000-0000000000aa;"
            f"IngestionEndpoint={self.base_url}/;LiveEndpoint={self.base_url}/"
        )

    def route(self, request: RecordedRequest) -> Reply:
        if request.method == "POST" and request.path.endswith("/track"):
            items = self.envelopes_of(request)
            return Reply(200, {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []})
        return Reply(200, {})

    @staticmethod
    def envelopes_of(request: RecordedRequest) -> list[dict]:
        body = request.body
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        decoded = json.loads(body or b"[]")
        return decoded if isinstance(decoded, list) else [decoded]

    def envelopes(self) -> list[dict]:
        return [e for r in list(self.requests) if r.path.endswith("/track") for e in self.envelopes_of(r)]
