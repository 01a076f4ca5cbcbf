"""Meta Graph API emulator: WhatsApp Cloud API sends, media lookup and download, behind a bearer token.

Routes (an optional version prefix such as `/v21.0` is accepted, as META_GRAPH_BASE_URL carries one):
- `POST /{phone_number_id}/messages` → 200 `{"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],
  "messages":[{"id":"wamid.…"}]}`. Validates the shape Meta rejects synchronously: `messaging_product`, `to`,
  a known `type`; text needs a non-empty `body`; a template needs `name`, `language.code`, `components` as a
  *list* (heyoo #44), no empty parameter text (frappe_whatsapp #169) and, for templates registered in
  `named_templates`, a `parameter_name` on every body parameter (whatomate #144); media needs `link` or `id`.
- `GET /{phone_number_id}?fields=…` → display number and verified name.
- `GET /{media_id}` → `{"url": <this emulator>/media-download/{id}, "mime_type", …}`; `GET /media-download/{id}`
  → the bytes added with `add_media(...)`.

A wrong or missing token → 401 with Graph's error JSON (code 190). `fail_with_code(131047, status=400, ...)`
injects Graph errors `{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}`.

Fixture `meta_emulator` (function scope) resets the session-wide server and points the settings at it.
"""

from __future__ import annotations

import hmac
import re
import threading
import uuid
from typing import Any

import pytest

from .base import Emulator, RecordedRequest, Reply

ACCESS_TOKEN = "meta-emulator-access-token-EAAG0123456789"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "15550783881"
APP_SECRET = "meta-emulator-app-secret-0123456789"
VERIFY_TOKEN = "meta-emulator-verify-token"
GRAPH_VERSION = "v21.0"

SEND_TYPES = frozenset(
    {"text", "template", "image", "document", "audio", "video", "sticker", "interactive", "location", "reaction"}
)
MEDIA_TYPES = frozenset({"image", "document", "audio", "video", "sticker"})
_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")


def graph_error(
    status: int, code: int, message: str, *, error_type: str = "OAuthException", details: str = ""
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": message,
        "type": error_type,
        "code": code,
        "fbtrace_id": "A" + uuid.uuid4().hex[:22],
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


def _invalid(message: str, details: str = "") -> Reply:
    return Reply(400, graph_error(400, 100, f"(#100) {message}", details=details))


class MetaEmulator(Emulator):
    name = "meta"

    def __init__(self, *, access_token: str = ACCESS_TOKEN, phone_number_id: str = PHONE_NUMBER_ID, **kwargs):
        super().__init__(**kwargs)
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        # Webhook-side secrets the fixture configures (the emulator itself only checks the bearer token).
        self.app_secret = APP_SECRET
        self.verify_token = VERIFY_TOKEN
        self.named_templates: set[str] = set()
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_urls: dict[str, str] = {}
        self._media_lock = threading.Lock()

    @property
    def graph_base_url(self) -> str:
        return f"{self.base_url}/{GRAPH_VERSION}"

    def reset(self) -> None:
        super().reset()
        with self._media_lock:
            self.media.clear()
            self.media_urls.clear()
        self.named_templates = set()

    # --- scripting ----------------------------------------------------------------------------------
    def fail_with_code(
        self,
        code: int,
        *,
        status: int = 400,
        message: str = "",
        details: str = "",
        times: int = 1,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        body = graph_error(status, code, message or f"Graph error {code}", details=details)
        self.fail_next(status, times=times, headers=headers, body=body, delay=delay)

    def add_media(self, content: bytes, mime_type: str = "image/jpeg", *, url: str | None = None) -> str:
        """Store media; return its media id. `url` overrides the download URL Graph answers (SSRF tests)."""
        media_id = str(uuid.uuid4().int)[:16]
        with self._media_lock:
            self.media[media_id] = (content, mime_type)
            self.media_urls[media_id] = url or f"{self.base_url}/media-download/{media_id}"
        return media_id

    # --- protocol -----------------------------------------------------------------------------------
    def authorize(self, request: RecordedRequest) -> Reply | None:
        header = request.headers.get("Authorization", "")
        if not hmac.compare_digest(header.encode(), f"Bearer {self.access_token}".encode()):
            return Reply(
                401,
                graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token"),
                {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token"'},
            )
        return None

    def route(self, request: RecordedRequest) -> Reply:
        path = _VERSION_PREFIX.sub("", request.path)
        if path.startswith("/media-download/") and request.method == "GET":
            with self._media_lock:
                stored = self.media.get(path.rsplit("/", 1)[-1])
            if stored is None:
                return Reply(404, b"Not Found", {"Content-Type": "text/plain"})
            return Reply(200, stored[0], {"Content-Type": stored[1]})
        if path == f"/{self.phone_number_id}/messages" and request.method == "POST":
            return self._send(request)
        if path == f"/{self.phone_number_id}" and request.method == "GET":
            return Reply(
                200,
                {
                    "display_phone_number": "+1 555-078-3881",
                    "verified_name": "Relay Resort",
                    "id": self.phone_number_id,
                },
            )
        media_id = path.strip("/")
        if request.method == "GET" and media_id in self.media:
            content, mime = self.media[media_id]
            return Reply(
                200,
                {
                    "messaging_product": "whatsapp",
                    "url": self.media_urls[media_id],
                    "mime_type": mime,
                    "sha256": "0" * 64,
                    "file_size": len(content),
                    "id": media_id,
                },
            )
        return Reply(
            400,
            graph_error(
                400,
                100,
                f"Unsupported request - method type: {request.method.lower()}",
                error_type="GraphMethodException",
            ),
        )

    def _send(self, request: RecordedRequest) -> Reply:
        try:
            body = request.json()
        except ValueError:
            return _invalid("Invalid parameter", "body is not JSON")
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return _invalid("The parameter messaging_product is required.")
        to = body.get("to")
        if not isinstance(to, str) or not to:
            return _invalid("The parameter to is required.")
        kind = body.get("type", "text")
        if kind not in SEND_TYPES:
            return _invalid("Invalid parameter", f"unknown message type {kind!r}")
        problem = self._check(kind, body.get(kind))
        if problem:
            return _invalid("Invalid parameter", problem)
        message_id = "wamid.HBgM" + uuid.uuid4().hex.upper()
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": message_id, **({"message_status": "accepted"} if kind == "template" else {})}],
            },
        )

    def _check(self, kind: str, content: Any) -> str:
        if not isinstance(content, dict):
            return f"{kind} object is required"
        if kind == "text":
            if not isinstance(content.get("body"), str) or not content["body"].strip():
                return "text.body is required and cannot be empty"
        elif kind == "template":
            if not content.get("name"):
                return "template.name is required"
            if not isinstance(content.get("language"), dict) or not content["language"].get("code"):
                return "template.language.code is required"
            components = content.get("components", [])
            if not isinstance(components, list):
                return "components must be a list"
            for component in components:
                if not isinstance(component, dict) or not component.get("type"):
                    return "each component needs a type"
                parameters = component.get("parameters", [])
                if not isinstance(parameters, list):
                    return "parameters must be a list"
                for parameter in parameters:
                    if not isinstance(parameter, dict):
                        return "each parameter must be an object"
                    if parameter.get("type") == "text" and not str(parameter.get("text", "")).strip():
                        return "Parameter text cannot be empty"
                    if (
                        component["type"] == "body"
                        and content["name"] in self.named_templates
                        and not parameter.get("parameter_name")
                    ):
                        return "Parameter name is missing or empty"
        elif kind in MEDIA_TYPES and not content.get("link") and not content.get("id"):
            return f"{kind}.link or {kind}.id is required"
        return ""

    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/messages")]


@pytest.fixture(scope="session")
def meta_emulator_server():
    emulator = MetaEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture
def meta_emulator(meta_emulator_server, settings):
    """The Graph emulator, reset, with Relay's Meta settings pointing at it."""
    meta_emulator_server.reset()
    settings.META_ENABLED = True
    settings.META_ACCESS_TOKEN = meta_emulator_server.access_token
    settings.META_PHONE_NUMBER_ID = meta_emulator_server.phone_number_id
    settings.META_APP_SECRET = meta_emulator_server.app_secret
    settings.META_VERIFY_TOKEN = meta_emulator_server.verify_token
    settings.META_GRAPH_BASE_URL = meta_emulator_server.graph_base_url
    yield meta_emulator_server
    meta_emulator_server.reset()
