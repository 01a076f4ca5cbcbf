"""Twilio REST emulator: the Messages API, the account resource and media, behind Twilio's basic auth.

- `POST /2010-04-01/Accounts/{sid}/Messages.json` (form) → 201 with a Message resource (`sid` "SM…"). Checks
  what Twilio checks synchronously: `To` and `From` present (WhatsApp: both `whatsapp:`-prefixed), one of
  `Body` / `ContentSid` / `MediaUrl`, `ContentVariables` only with `ContentSid` (21654) and a JSON object.
- `GET /2010-04-01/Accounts/{sid}.json` → the Account resource.
- `GET /2010-04-01/Accounts/{sid}/Messages/{MM}/Media/{ME}` → bytes added with `add_media(...)`.
- `GET /redirect?to=<url>` → 307 to `to` (redirect-policy tests; no auth, like a CDN hop).

Every route except `/redirect` needs HTTP basic auth with the account SID and auth token, else 401 with
Twilio's JSON error body (code 20003). Failure injection: `fail_with_code(63018, status=429, ...)` answers with
Twilio's error body `{"code", "message", "more_info", "status"}`.

Fixture `twilio_emulator` (function scope) resets the session-wide server and points the settings at it.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from .base import Emulator, RecordedRequest, Reply

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "twilio-emulator-auth-token-0123456"
WHATSAPP_NUMBER = "+14155238886"

_ACCOUNT_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-fA-F]{32})(?P<rest>.*)$")
_MEDIA_PATH = re.compile(r"^/Messages/(?P<message>MM[0-9a-f]{32})/Media/(?P<media>ME[0-9a-f]{32})$")


def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply(status, body, headers)


@dataclass
class SentMessage:
    sid: str
    form: dict[str, str]
    media_urls: list[str] = field(default_factory=list)


class TwilioEmulator(Emulator):
    name = "twilio"

    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN, **kwargs):
        super().__init__(**kwargs)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.friendly_name = "Relay test account"
        self.sent: list[SentMessage] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self._sent_lock = threading.Lock()

    def reset(self) -> None:
        super().reset()
        with self._sent_lock:
            self.sent.clear()
            self.media.clear()

    # --- scripting ----------------------------------------------------------------------------------
    def fail_with_code(
        self,
        code: int,
        *,
        status: int = 400,
        message: str = "",
        times: int = 1,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        body = twilio_error(status, code, message or f"Twilio error {code}").body
        self.fail_next(status, times=times, headers=headers, body=body, delay=delay)

    def add_media(self, content: bytes, content_type: str = "image/jpeg") -> str:
        """Store media and return its URL, as it would appear in an inbound webhook's MediaUrl0."""
        message_sid = "MM" + uuid.uuid4().hex
        media_sid = "ME" + uuid.uuid4().hex
        with self._sent_lock:
            self.media[media_sid] = (content, content_type)
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"

    # --- protocol -----------------------------------------------------------------------------------
    def authorize(self, request: RecordedRequest) -> Reply | None:
        if request.path == "/redirect":
            return None
        header = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if not hmac.compare_digest(header.encode(), expected.encode()):
            return twilio_error(401, 20003, "Authenticate")
        match = _ACCOUNT_PATH.match(request.path)
        if match and match["sid"] != self.account_sid:
            return twilio_error(403, 20003, "Authenticate")
        return None

    def route(self, request: RecordedRequest) -> Reply:
        if request.path == "/redirect":
            return Reply(307, b"", {"Location": request.query.get("to", [""])[0]})
        match = _ACCOUNT_PATH.match(request.path)
        if not match:
            return twilio_error(404, 20404, "The requested resource was not found")
        rest = match["rest"]
        if rest == ".json" and request.method == "GET":
            return Reply(200, self._account())
        if rest == "/Messages.json" and request.method == "POST":
            return self._create_message(request)
        media = _MEDIA_PATH.match(rest)
        if media and request.method == "GET":
            with self._sent_lock:
                stored = self.media.get(media["media"])
            if stored is None:
                return twilio_error(404, 20404, "The requested resource was not found")
            return Reply(200, stored[0], {"Content-Type": stored[1]})
        return twilio_error(404, 20404, "The requested resource was not found")

    def _account(self) -> dict[str, Any]:
        return {
            "sid": self.account_sid,
            "friendly_name": self.friendly_name,
            "status": "active",
            "type": "Full",
            "owner_account_sid": self.account_sid,
            "date_created": "Tue, 01 Dec 2026 10:00:00 +0000",
            "date_updated": "Tue, 01 Dec 2026 10:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}.json",
        }

    def _create_message(self, request: RecordedRequest) -> Reply:
        form = request.form()
        values = {key: items[0] for key, items in form.items()}
        to, from_ = values.get("To", ""), values.get("From", "")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not from_:
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not to.startswith("whatsapp:") or not from_.startswith("whatsapp:"):
            return twilio_error(400, 21910, "Invalid From and To pair. From and To should be of the same channel")
        body, content_sid, media_urls = values.get("Body", ""), values.get("ContentSid", ""), form.get("MediaUrl", [])
        if "ContentVariables" in values:
            if not content_sid:
                return twilio_error(400, 21654, "ContentSid Required")
            try:
                variables = json.loads(values["ContentVariables"])
            except ValueError:
                return twilio_error(400, 21656, "The ContentVariables Parameter is invalid")
            if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
                return twilio_error(400, 21656, "The ContentVariables Parameter is invalid")
            if any(not v.strip() for v in variables.values()):
                return twilio_error(400, 63013, "Channel policy violation: empty template variable")
        if content_sid and not re.fullmatch(r"HX[0-9a-f]{32}", content_sid):
            return twilio_error(400, 21655, "The ContentSid is Invalid")
        if not (body.strip() or content_sid or media_urls):
            return twilio_error(400, 21619, "A text message body or media url must be specified.")
        sid = "SM" + uuid.uuid4().hex
        with self._sent_lock:
            self.sent.append(SentMessage(sid=sid, form=values, media_urls=list(media_urls)))
        resource = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": from_,
            "body": body,
            "status": "queued",
            "num_media": str(len(media_urls)),
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "error_code": None,
            "error_message": None,
            "messaging_service_sid": None,
            "date_created": "Tue, 01 Dec 2026 10:00:00 +0000",
            "date_updated": "Tue, 01 Dec 2026 10:00:00 +0000",
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
        }
        return Reply(201, resource)

    def message_requests(self) -> list[RecordedRequest]:
        """Accepted message creations, in order."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")]


@pytest.fixture(scope="session")
def twilio_emulator_server():
    emulator = TwilioEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture
def twilio_emulator(twilio_emulator_server, settings):
    """The Twilio emulator, reset, with Relay's Twilio settings pointing at it."""
    twilio_emulator_server.reset()
    settings.TWILIO_ENABLED = True
    settings.TWILIO_ACCOUNT_SID = twilio_emulator_server.account_sid
    settings.TWILIO_AUTH_TOKEN = twilio_emulator_server.auth_token
    settings.TWILIO_WHATSAPP_NUMBER = WHATSAPP_NUMBER
    settings.TWILIO_API_BASE_URL = twilio_emulator_server.base_url
    yield twilio_emulator_server
    twilio_emulator_server.reset()
