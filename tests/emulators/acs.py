"""ACS Advanced Messaging emulator: the three routes the SDK calls, with ACS's HMAC and repeatability rules.

- `POST /messages/notifications:send` → 202 `{"receipts": [{"messageId", "to"}]}`.
- `GET /messages/channels/{id}/templates` → `{"value": [...], "nextLink": ...}`, paged (`template_page_size`
  or the SDK's `maxpagesize`).
- `GET /messages/streams/{id}` → the bytes scripted with `add_media(...)`.

Every request must carry the SDK's HMAC-SHA256 signature (reference doc §1.5), else 401.

Repeatability follows ACS's documented rules for repeatable requests (learn.microsoft.com/rest/api/communication/
repeatable-requests, OASIS Repeatable Requests 1.0): `Repeatability-Request-ID` must be a GUID and
`Repeatability-First-Sent` an IMF-fixdate, else 400; a first-sent older than the tracking window (5 min) → 412;
a repeated id within the window with the same body is answered with the *original* response and
`Repeatability-Result: accepted` and is not delivered again; a repeated id with a different body → 400
`Repeatability-Result: rejected`. `.deliveries` holds one entry per message actually "delivered";
`.requests` every accepted HTTP request (replays included).

Fixture `acs_emulator` (function scope) resets the session-wide server and points the settings at it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote

import pytest

from .acs_events import CHANNEL_ID, WEBHOOK_SECRET
from .base import Emulator, RecordedRequest, Reply

ACCESS_KEY = base64.b64encode(b"relay-acs-emulator-access-key-0123456789").decode()
SEND_KINDS = frozenset({"text", "template", "image", "document", "video", "audio", "image_v0"})
# Tracked duration of repeatable requests, as documented for ACS.
REPEATABILITY_WINDOW = timedelta(minutes=5)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}}, headers)


@dataclass
class Delivery:
    """One message ACS accepted (replays of the same repeatability id are not new deliveries)."""

    message_id: str
    to: str
    body: dict[str, Any]
    repeatability_request_id: str
    repeatability_first_sent: str
    headers: dict[str, str] = field(repr=False, default_factory=dict)


class AcsEmulator(Emulator):
    name = "acs"

    def __init__(self, *, access_key: str = ACCESS_KEY, channel_id: str = CHANNEL_ID, **kw):
        super().__init__(**kw)
        self.access_key = access_key
        self.channel_id = channel_id
        self._state_lock = threading.Lock()
        self._init_state()

    def _init_state(self) -> None:
        self.deliveries: list[Delivery] = []
        self.templates: dict[str, list[dict[str, Any]]] = {}
        self.template_page_size = 50
        self.media: dict[str, tuple[bytes, str, bool]] = {}
        self.media_bytes_written: dict[str, int] = {}
        # set once a chunked download finished or the client hung up
        self.media_served: dict[str, threading.Event] = {}
        self.repeatability_window = REPEATABILITY_WINDOW
        # page offset → status, to fail one page of a paged template listing
        self._template_page_failures: dict[int, int] = {}
        # request id → (canonical body, status, body, headers) of the original answer
        self._repeatable: dict[str, tuple[bytes, int, Any, dict[str, str]]] = {}

    def reset(self) -> None:
        super().reset()
        with self._state_lock:
            self._init_state()

    # --- scripting ----------------------------------------------------------------------------------
    def set_templates(self, items: list[dict[str, Any]], *, channel_id: str | None = None, page_size: int = 50):
        """Script the channel's template list (`MessageTemplateItem` JSON, see `template_item`)."""
        with self._state_lock:
            self.templates[channel_id or self.channel_id] = list(items)
            self.template_page_size = page_size

    def fail_template_page(self, offset: int, status: int) -> None:
        """Answer the template page starting at `offset` (0 = first page) with `status`."""
        with self._state_lock:
            self._template_page_failures[offset] = status

    def add_media(self, media_id: str, content: bytes, mime_type: str = "image/jpeg", *, chunked: bool = False):
        """Serve `content` at /messages/streams/{media_id}; `chunked` sends it without Content-Length, in 64 KiB
        chunks, counting in `media_bytes_written[media_id]` what the client actually read off the socket."""
        with self._state_lock:
            self.media[media_id] = (content, mime_type, chunked)
            self.media_bytes_written[media_id] = 0
            self.media_served[media_id] = threading.Event()

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.base_url}/;accesskey={self.access_key}"

    # --- auth ---------------------------------------------------------------------------------------
    def authorize(self, request: RecordedRequest) -> Reply | None:
        """The exact check of the reference doc (§1.5): the SDK signs `VERB\\npath?query\\ndate;host;hash`."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        content_hash = base64.b64encode(hashlib.sha256(request.body).digest()).decode()
        date, host, auth = headers.get("x-ms-date", ""), headers.get("host", ""), headers.get("authorization", "")
        string_to_sign = f"{request.method}\n{request.raw_path}\n{date};{host};{content_hash}"  # type: ignore[attr-defined]
        signature = base64.b64encode(
            hmac.new(base64.b64decode(self.access_key), string_to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        expected = f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
        ok = hmac.compare_digest(auth.encode(), expected.encode())
        ok = hmac.compare_digest(headers.get("x-ms-content-sha256", "").encode(), content_hash.encode()) and ok
        if not ok or not date:
            return _error(401, "Denied", "Denied by the resource provider: invalid HMAC signature.")
        return None

    # --- routes -------------------------------------------------------------------------------------
    def route(self, request: RecordedRequest) -> Reply:
        if "api-version" not in request.query:
            return _error(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
        path = request.path
        if request.method == "POST" and path == "/messages/notifications:send":
            return self._send(request)
        if request.method == "GET" and path.startswith("/messages/channels/") and path.endswith("/templates"):
            channel = unquote(path[len("/messages/channels/") : -len("/templates")])
            return self._list_templates(request, channel)
        if request.method == "GET" and path.startswith("/messages/streams/"):
            return self._stream(unquote(path[len("/messages/streams/") :]))
        return _error(404, "NotFound", f"No route for {request.method} {path}")

    def _send(self, request: RecordedRequest) -> Reply:
        headers = {k.lower(): v for k, v in request.headers.items()}
        request_id = headers.get("repeatability-request-id", "")
        first_sent_raw = headers.get("repeatability-first-sent", "")
        rejected = {"Repeatability-Result": "rejected"}
        try:
            uuid.UUID(request_id)
        except ValueError:
            return _error(400, "BadRequest", "Repeatability-Request-ID must be a GUID.", rejected)
        try:
            first_sent = parsedate_to_datetime(first_sent_raw)
        except (TypeError, ValueError):
            first_sent = None
        if first_sent is None or first_sent.tzinfo is None:
            return _error(400, "BadRequest", "Repeatability-First-Sent must be an IMF-fixdate.", rejected)
        if datetime.now(UTC) - first_sent > self.repeatability_window:
            return _error(
                412, "PreconditionFailed", "Repeatability-First-Sent is outside the tracked duration.", rejected
            )
        try:
            body = json.loads(request.body)
        except ValueError:
            return _error(400, "BadRequest", "The request body is not valid JSON.")
        problem = self._invalid_send_body(body)
        if problem:
            return _error(400, "BadRequest", problem)
        canonical = json.dumps(body, sort_keys=True).encode()
        with self._state_lock:
            seen = self._repeatable.get(request_id)
            if seen is not None:
                if seen[0] != canonical:
                    return _error(400, "BadRequest", "Repeated request does not match the original.", rejected)
                return Reply(seen[1], seen[2], dict(seen[3]))
            message_id = str(uuid.uuid4())
            to = body["to"][0]
            reply_body = {"receipts": [{"messageId": message_id, "to": to}]}
            reply_headers = {"Repeatability-Result": "accepted"}
            self._repeatable[request_id] = (canonical, 202, reply_body, reply_headers)
            self.deliveries.append(
                Delivery(message_id, to, body, request_id, first_sent_raw, headers=dict(request.headers))
            )
        return Reply(202, reply_body, dict(reply_headers))

    def _invalid_send_body(self, body: Any) -> str:
        if not isinstance(body, dict):
            return "The request body must be a JSON object."
        if body.get("kind") not in SEND_KINDS:
            return f"Unknown notification kind {body.get('kind')!r}."
        if body.get("channelRegistrationId") != self.channel_id:
            return "Invalid channelRegistrationId."
        to = body.get("to")
        if not isinstance(to, list) or len(to) != 1 or not isinstance(to[0], str) or not to[0]:
            return "Only one recipient is supported."
        kind = body["kind"]
        if kind == "text" and not body.get("content"):
            return "content is required for text notifications."
        if kind in {"image", "document", "video", "audio"} and not body.get("mediaUri"):
            return "mediaUri is required for media notifications."
        if kind == "template":
            template = body.get("template")
            if not isinstance(template, dict) or not template.get("name") or not template.get("language"):
                return "template.name and template.language are required."
        return ""

    def _list_templates(self, request: RecordedRequest, channel: str) -> Reply:
        with self._state_lock:
            if channel not in self.templates and channel != self.channel_id:
                return _error(404, "NotFound", f"Channel {channel} not found.")
            items = list(self.templates.get(channel, []))
            page_size = self.template_page_size
        if "maxpagesize" in request.query:
            page_size = int(request.query["maxpagesize"][0])
        start = int(request.query.get("skip", ["0"])[0])
        with self._state_lock:
            failure = self._template_page_failures.get(start)
        if failure:
            return _error(failure, "ServiceUnavailable", "Try again later.")
        page = items[start : start + page_size]
        body: dict[str, Any] = {"value": page}
        if start + page_size < len(items):
            body["nextLink"] = (
                f"{self.base_url}/messages/channels/{quote(channel)}/templates"
                f"?maxpagesize={page_size}&skip={start + page_size}"
            )
        return Reply(200, body)

    def _stream(self, media_id: str) -> Reply:
        with self._state_lock:
            found = self.media.get(media_id)
        if found is None:
            return _error(404, "NotFound", f"Media {media_id} not found.")
        content, mime_type, chunked = found
        if chunked:
            return ChunkedReply(200, content, {"Content-Type": mime_type}, counter=(self, media_id))
        return Reply(200, content, {"Content-Type": mime_type})

    def _write(self, handler, reply: Reply) -> None:  # type: ignore[override]
        if not isinstance(reply, ChunkedReply):
            return Emulator._write(handler, reply)
        emulator, media_id = reply.counter
        try:
            handler.send_response(reply.status)
            for key, value in reply.headers.items():
                handler.send_header(key, value)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for start in range(0, len(reply.body), 64 * 1024):
                chunk = reply.body[start : start + 64 * 1024]
                handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                handler.wfile.flush()
                with emulator._state_lock:
                    emulator.media_bytes_written[media_id] += len(chunk)
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client stopped reading
        finally:
            emulator.media_served[media_id].set()


class ChunkedReply(Reply):
    """Streamed without Content-Length, as a large download from a CDN may be."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str], *, counter: tuple[AcsEmulator, str]):
        super().__init__(status, body, headers)
        self.counter = counter


def template_item(
    name: str,
    *,
    language: str = "es",
    status: str = "approved",
    body: str = "Hola {{1}}",
    category: str = "UTILITY",
    header: str | None = None,
    footer: str | None = None,
    example: list[str] | None = None,
    named_examples: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A `WhatsAppMessageTemplateItem` as ACS lists it: `content` is Meta's raw template JSON."""
    components: list[dict[str, Any]] = []
    if header:
        components.append({"type": "HEADER", "format": "TEXT", "text": header})
    body_component: dict[str, Any] = {"type": "BODY", "text": body}
    if example:
        body_component["example"] = {"body_text": [example]}
    if named_examples:
        body_component["example"] = {"body_text_named_params": named_examples}
    components.append(body_component)
    if footer:
        components.append({"type": "FOOTER", "text": footer})
    return {
        "kind": "whatsApp",
        "name": name,
        "language": language,
        "status": status,
        "content": {
            "name": name,
            "language": language,
            "status": status.upper(),
            "category": category,
            "components": components,
            "id": str(int(hashlib.sha256(f"{name}:{language}".encode()).hexdigest()[:12], 16)),
        },
    }


@pytest.fixture(scope="session")
def acs_emulator_server():
    emulator = AcsEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture
def acs_emulator(acs_emulator_server, settings):
    """The ACS emulator, reset, with Relay's ACS settings pointing at it (key auth over plain HTTP)."""
    acs_emulator_server.reset()
    settings.ACS_ENABLED = True
    settings.ACS_CONNECTION_STRING = acs_emulator_server.connection_string
    settings.ACS_ENDPOINT = ""
    settings.ACS_CHANNEL_REGISTRATION_ID = acs_emulator_server.channel_id
    settings.ACS_EVENTGRID_SECRET = [WEBHOOK_SECRET]
    yield acs_emulator_server
    acs_emulator_server.reset()
