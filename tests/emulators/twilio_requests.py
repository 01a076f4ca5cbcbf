"""Builders for the webhooks Twilio sends us: form fields plus `X-Twilio-Signature`.

The signature is computed with twilio's own `RequestValidator.compute_signature` over the exact URL the test
client calls (`http://testserver/...` unless a forwarded public URL is given), so a test exercises the same
check production does. Realistic field sets live in tests/fixtures/twilio/*.json.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from .twilio import ACCOUNT_SID, AUTH_TOKEN, WHATSAPP_NUMBER

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio"
INBOUND_PATH = "/api/v1/whatsapp/webhook/twilio/"
STATUS_PATH = "/api/v1/whatsapp/webhook/twilio/status/"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def twilio_fixture(name: str, **overrides: Any) -> dict[str, str]:
    """A captured-shape webhook form from tests/fixtures/twilio/<name>.json, with overrides applied."""
    form = json.loads((FIXTURES / f"{name}.json").read_text())
    form.update({key: str(value) for key, value in overrides.items()})
    return form


def twilio_inbound_form(
    *, body: str = "Hola", sender: str = "+254700000001", message_sid: str | None = None, **extra: Any
) -> dict[str, str]:
    """A plain inbound WhatsApp text as Twilio posts it."""
    form = twilio_fixture("inbound_text")
    form.update(
        MessageSid=message_sid or "SM" + uuid.uuid4().hex,
        Body=body,
        From=f"whatsapp:{sender}",
        WaId=sender.lstrip("+"),
        To=f"whatsapp:{WHATSAPP_NUMBER}",
        AccountSid=ACCOUNT_SID,
    )
    form["SmsSid"] = form["SmsMessageSid"] = form["MessageSid"]
    form.update({key: str(value) for key, value in extra.items()})
    return form


def twilio_status_form(*, message_sid: str, status: str, error_code: str = "", **extra: Any) -> dict[str, str]:
    form = twilio_fixture("status_delivered")
    form.update(MessageSid=message_sid, SmsSid=message_sid, MessageStatus=status, SmsStatus=status)
    if error_code:
        form["ErrorCode"] = error_code
    form.update({key: str(value) for key, value in extra.items()})
    return form


def twilio_signature(url: str, form: dict[str, str], *, auth_token: str = AUTH_TOKEN) -> str:
    return RequestValidator(auth_token).compute_signature(url, form)


def twilio_signed(
    path: str,
    form: dict[str, str],
    *,
    auth_token: str = AUTH_TOKEN,
    public_url: str | None = None,
) -> tuple[str, dict[str, str]]:
    """(urlencoded body, extra headers for the Django test client) for a POST to `path`.

    `public_url` signs for the URL Twilio saw in front of a proxy (e.g. "https://relay.example.com") and adds
    the X-Forwarded-* headers the proxy would.
    """
    headers: dict[str, str] = {}
    if public_url:
        url = public_url.rstrip("/") + path
        scheme, host = public_url.split("://", 1)
        headers["HTTP_X_FORWARDED_PROTO"] = scheme
        headers["HTTP_X_FORWARDED_HOST"] = host.rstrip("/")
    else:
        url = "http://testserver" + path
    headers["HTTP_X_TWILIO_SIGNATURE"] = twilio_signature(url, form, auth_token=auth_token)
    return urlencode(form), headers


def twilio_post(client, path: str, form: dict[str, str], **kwargs: Any):
    """POST a signed Twilio webhook through the Django test client."""
    body, headers = twilio_signed(path, form, **kwargs)
    return client.post(path, data=body, content_type=FORM_CONTENT_TYPE, **headers)
