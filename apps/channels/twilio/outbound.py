"""Twilio's REST Messages API through the twilio library: the call's arguments, an HTTP client pointed at
`TWILIO_API_BASE_URL`, and Twilio's errors mapped to ChannelError (permanent, transient with a wait, or
ambiguous)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ..base import ChannelError, MessageKind, OutboundMessage

# The twilio library logs every request at INFO (URL, form fields); keep that out of our logs.
_library_logger = logging.getLogger("relay.twilio_http")
_library_logger.setLevel(logging.WARNING)

STATUS_CALLBACK_PATH = "/api/v1/whatsapp/webhook/twilio/status/"
WINDOW_CLOSED = "63016"
RATE_LIMITED = "63018"
# Template variable problems, too long, invalid / unreachable recipient, channel cannot send to this user.
PERMANENT_CODES = frozenset({"63016", "63013", "63021", "21211", "21614", "63024", "21654", "21610", "63003"})
TRANSIENT_CODES = frozenset({"63018", "20429"})


class _BaseUrlHttpClient(TwilioHttpClient):
    """The library's HTTP client, sending to `base_url` instead of https://<product>.twilio.com.

    Also keeps the last response's headers (Retry-After), which TwilioRestException does not carry. One
    instance per call, so there is no sharing between threads.
    """

    def __init__(self, *, base_url: str, connect_timeout: float, read_timeout: float):
        super().__init__(pool_connections=False, timeout=read_timeout, logger=_library_logger)
        self.timeout = (connect_timeout, read_timeout)  # requests takes (connect, read)
        self._base = urlsplit(base_url.rstrip("/"))
        self.last_headers: dict[str, str] = {}
        self.responded = False

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, **kwargs):
        parts = urlsplit(url)
        rewritten = urlunsplit(
            (self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, parts.fragment)
        )
        response = super().request(method, rewritten, params=params, data=data, headers=headers, auth=auth, **kwargs)
        self.responded = True
        self.last_headers = dict(response.headers or {})
        return response


def _retry_after(headers: dict[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _connection_error_is_before_send(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached Twilio (refused, DNS failure, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return any(marker in text for marker in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError"))


def client_build() -> tuple[Client, _BaseUrlHttpClient]:
    timeout = float(settings.CHANNEL_HTTP_TIMEOUT_SECONDS)
    http_client = _BaseUrlHttpClient(
        base_url=settings.TWILIO_API_BASE_URL, connect_timeout=min(timeout, 5.0), read_timeout=timeout
    )
    client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http_client, environment={})
    return client, http_client


def error_map(exc: Exception, http_client: _BaseUrlHttpClient) -> ChannelError:
    headers = http_client.last_headers
    if isinstance(exc, (TwilioRestException, TwilioServiceException)):
        code = str(exc.code or "")
        status = int(exc.status or 0)
        message = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "") or ""
        # The library prefixes Twilio's message with its own ("Unable to create record: …"); keep Twilio's.
        if message.startswith("Unable to ") and ": " in message:
            message = message.split(": ", 1)[1]
        retry_after = _retry_after(headers)
        if code in TRANSIENT_CODES or status == 429:
            return ChannelError(message, code or "429", retry_after=retry_after)
        if code in PERMANENT_CODES:
            return ChannelError(message, code, permanent=True)
        if status >= 500:
            return ChannelError(message or f"Twilio HTTP {status}", code or str(status), retry_after=retry_after)
        return ChannelError(message or f"Twilio HTTP {status}", code or str(status), permanent=True)
    if isinstance(exc, requests.ConnectionError) and _connection_error_is_before_send(exc):
        return ChannelError(f"Twilio unreachable: {type(exc).__name__}", "network")
    if isinstance(exc, requests.RequestException):
        # The request left (read timeout, dropped connection, broken answer); Twilio may have accepted it.
        # Resending could deliver the message twice.
        return ChannelError(f"no answer from Twilio: {type(exc).__name__}", "timeout", ambiguous=True)
    if http_client.responded:
        # Twilio answered but the answer could not be read (e.g. not JSON): the message may exist.
        return ChannelError(f"unreadable Twilio answer: {type(exc).__name__}", "bad_response", ambiguous=True)
    return ChannelError(f"Twilio call failed before sending: {type(exc).__name__}: {exc}", "error")


def values_build(outbound: OutboundMessage) -> dict[str, Any]:
    """The Messages API arguments for `outbound`. Raises ChannelError(permanent) for a message Twilio would refuse."""
    sender = settings.TWILIO_WHATSAPP_NUMBER
    values: dict[str, Any] = {
        "to": outbound.to if outbound.to.startswith("whatsapp:") else f"whatsapp:{outbound.to}",
        "from_": sender if sender.startswith("whatsapp:") else f"whatsapp:{sender}",
    }
    if settings.PUBLIC_BASE_URL:
        values["status_callback"] = settings.PUBLIC_BASE_URL.rstrip("/") + STATUS_CALLBACK_PATH
    if outbound.kind == MessageKind.TEMPLATE or outbound.template_name:
        if not outbound.template_provider_ref:
            raise ChannelError(
                f"template {outbound.template_name} has no Twilio ContentSid", "template_unmapped", permanent=True
            )
        values["content_sid"] = outbound.template_provider_ref
        if outbound.template_parameters:
            variables = {
                (p.name if outbound.template_named_parameters else str(index)): p.value
                for index, p in enumerate(outbound.template_parameters, start=1)
            }
            values["content_variables"] = json.dumps(variables, ensure_ascii=False)
    elif outbound.media is not None and outbound.media.url:
        values["media_url"] = [outbound.media.url]
        if outbound.media.caption or outbound.text:
            values["body"] = outbound.media.caption or outbound.text
    else:
        if not outbound.text.strip():
            raise ChannelError("empty message body", "empty_message", permanent=True)
        values["body"] = outbound.text
    return values
