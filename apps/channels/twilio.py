"""Twilio WhatsApp (Programmable Messaging): form-encoded webhooks in, REST Messages API out.

Inbound and status callbacks are verified with twilio's own `RequestValidator` (Twilio asks integrators not
to reimplement it: it adds parameters without notice). Sends go through the twilio library's `Client` with an
HTTP client that rewrites the scheme and host to `TWILIO_API_BASE_URL`, so tests and a proxy deployment run the
same library code as production. Twilio REST POSTs are not idempotent: a timeout after the request left is
reported as ambiguous and never resent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.http import HttpResponse
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm
from twilio.rest import Client

from apps.core.phone import InvalidPhoneNumber, is_bsuid, mask, phone_normalize

from .base import (
    Channel,
    ChannelError,
    DeliveryStatus,
    InboundEvent,
    MalformedPayload,
    Media,
    MessageKind,
    OutboundMessage,
    SendResult,
    SignatureError,
    StatusEvent,
)
from .media import media_fetch

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

# The twilio library logs every request at INFO (URL, form fields); keep that out of our logs.
_library_logger = logging.getLogger("relay.twilio_http")
_library_logger.setLevel(logging.WARNING)

# Twilio SIDs are two letters and 32 hex digits; allow some slack, never what a database column cannot hold.
_SID = re.compile(r"[A-Za-z]{2}[0-9A-Za-z]{1,62}")
STATUS_CALLBACK_PATH = "/api/v1/whatsapp/webhook/twilio/status/"
MEDIA_HOSTS = frozenset({"api.twilio.com", ".twiliocdn.com", "media.twiliocdn.com"})

STATUS_MAP = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    # Twilio's "undelivered" is WhatsApp's failed (the carrier refused it); Chatwoot PR #8097 does the same.
    "undelivered": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
# queued, sending, accepted, scheduled, receiving, received, partially_delivered: no state change for us.

WINDOW_CLOSED = "63016"
RATE_LIMITED = "63018"
# Template variable problems, too long, invalid / unreachable recipient, channel cannot send to this user.
PERMANENT_CODES = frozenset({"63016", "63013", "63021", "21211", "21614", "63024", "21654", "21610", "63003"})
TRANSIENT_CODES = frozenset({"63018", "20429"})

KIND_BY_MESSAGE_TYPE = {
    "text": MessageKind.TEXT,
    "image": MessageKind.IMAGE,
    "video": MessageKind.VIDEO,
    "audio": MessageKind.AUDIO,
    "document": MessageKind.DOCUMENT,
    "sticker": MessageKind.STICKER,
    "location": MessageKind.LOCATION,
    "button": MessageKind.BUTTON,
    "interactive": MessageKind.INTERACTIVE,
    "reaction": MessageKind.REACTION,
}


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


def _strip_prefix(value: str) -> str:
    value = (value or "").strip()
    return value[len("whatsapp:") :] if value.lower().startswith("whatsapp:") else value


def _address(value: str) -> str:
    """`whatsapp:+15551234567` → E.164; `whatsapp:US.123…` → the BSUID. Raises MalformedPayload otherwise."""
    bare = _strip_prefix(value)
    if is_bsuid(bare):
        return bare
    try:
        return phone_normalize(bare)
    except InvalidPhoneNumber as exc:
        raise MalformedPayload(f"unreadable WhatsApp address: {mask(bare)}") from exc


def _no_nul(value: str) -> str:
    return value.replace("\x00", "")


def _float_or_none(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


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


class TwilioChannel(Channel):
    name = "twilio"
    idempotent_send = False

    def enabled(self) -> bool:
        return bool(settings.TWILIO_ENABLED)

    # --- inbound ------------------------------------------------------------------------------------
    def acknowledge(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("<Response></Response>", content_type="text/xml")

    @staticmethod
    def _candidate_urls(request: HttpRequest) -> list[str]:
        """The URL Twilio called, as seen from outside (App Service / Front Door terminate TLS before us)."""
        urls = []
        forwarded_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        forwarded_proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if forwarded_host:
            urls.append(f"{forwarded_proto or request.scheme}://{forwarded_host}{request.get_full_path()}")
        elif forwarded_proto in ("http", "https"):
            urls.append(f"{forwarded_proto}://{request.get_host()}{request.get_full_path()}")
        urls.append(request.build_absolute_uri())
        if settings.PUBLIC_BASE_URL:
            urls.append(settings.PUBLIC_BASE_URL.rstrip("/") + request.get_full_path())
        return list(dict.fromkeys(urls))

    def verify(self, request: HttpRequest) -> None:
        if settings.SKIP_WEBHOOK_SIGNATURE_VERIFICATION and settings.DEBUG:
            return
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            raise SignatureError("missing X-Twilio-Signature")
        if not settings.TWILIO_AUTH_TOKEN:
            raise SignatureError("TWILIO_AUTH_TOKEN is not configured")
        validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER, ""))
        content_type = request.content_type or ""
        # JSON-bodied webhooks sign the URL (with ?bodySHA256=) and the raw body must be passed to be checked.
        params: Any = request.body.decode("utf-8", "replace") if content_type == "application/json" else request.POST
        for url in self._candidate_urls(request):
            if validator.validate(url, params, signature, algorithm):
                return
        raise SignatureError("X-Twilio-Signature does not match")

    def parse(self, request: HttpRequest) -> list[InboundEvent | StatusEvent]:
        # NUL characters cannot be stored in PostgreSQL text or jsonb; they carry nothing a user could mean.
        form = {_no_nul(key): _no_nul(request.POST.get(key, "")) for key in request.POST}
        raw: dict[str, Any] = {}
        for key, values in request.POST.lists():
            cleaned = [_no_nul(v) for v in values]
            raw[_no_nul(key)] = cleaned[0] if len(cleaned) == 1 else cleaned
        message_sid = form.get("MessageSid") or form.get("SmsSid") or ""
        if not message_sid:
            raise MalformedPayload("MessageSid is missing")
        if not _SID.fullmatch(message_sid):
            raise MalformedPayload("MessageSid is not a Twilio SID")
        if "MessageStatus" in form or request.path.rstrip("/").endswith("/status"):
            status = self._parse_status(form, message_sid, raw)
            return [status] if status else []
        return [self._parse_message(form, message_sid, raw)]

    def _parse_status(self, form, message_sid: str, raw: dict) -> StatusEvent | None:
        value = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        status = STATUS_MAP.get(value)
        if status is None:
            logger.debug("twilio status %s for %s ignored", value, message_sid)
            return None
        recipient = _strip_prefix(form.get("To", ""))
        return StatusEvent(
            channel=self.name,
            provider_message_id=message_sid,
            status=status,
            occurred_at=datetime.now(tz=UTC),
            error_code=form.get("ErrorCode", "") or "",
            error_message=form.get("ErrorMessage", "") or ("canceled" if value == "canceled" else ""),
            recipient=recipient,
            raw=raw,
        )

    def _parse_message(self, form, message_sid: str, raw: dict) -> InboundEvent:
        sender = _address(form.get("From", ""))
        if not sender:
            raise MalformedPayload("From is missing")
        sender_phone = "" if is_bsuid(sender) else sender
        sender_bsuid = sender if is_bsuid(sender) else ""
        if not sender_phone and form.get("WaId", "").isdigit():
            with contextlib.suppress(InvalidPhoneNumber):
                sender_phone = phone_normalize("+" + form["WaId"])
        message_type = (form.get("MessageType") or "").lower()
        body = form.get("Body", "") or ""
        kind = KIND_BY_MESSAGE_TYPE.get(message_type, MessageKind.TEXT)
        media = None
        try:
            num_media = int(form.get("NumMedia") or 0)
        except ValueError:
            num_media = 0
        if num_media > 0 and form.get("MediaUrl0"):
            url = form["MediaUrl0"]
            mime = form.get("MediaContentType0", "")
            media = Media(mime_type=mime, provider_id=url.rstrip("/").rsplit("/", 1)[-1], url=url, caption=body)
            if kind in (MessageKind.TEXT, MessageKind.UNKNOWN) or message_type == "":
                kind = _kind_for_mime(mime)
            if num_media > 1:
                logger.info("twilio message %s carries %d media; only the first is kept", message_sid, num_media)
        payload = form.get("ButtonPayload", "") or form.get("ListId", "")
        if payload and kind == MessageKind.TEXT:
            kind = MessageKind.BUTTON
        text = body or form.get("ButtonText", "") or form.get("ListTitle", "")
        latitude, longitude = _float_or_none(form.get("Latitude")), _float_or_none(form.get("Longitude"))
        if latitude is not None and longitude is not None:
            kind = MessageKind.LOCATION
            text = body or form.get("Address", "") or form.get("Label", "")
        recipient = _strip_prefix(form.get("To", ""))
        return InboundEvent(
            channel=self.name,
            provider_message_id=message_sid,
            sender_phone=sender_phone,
            sender_bsuid=sender_bsuid,
            received_at=datetime.now(tz=UTC),
            kind=kind,
            text=text,
            profile_name=form.get("ProfileName", "") or "",
            recipient=recipient,
            media=media,
            payload=payload,
            reply_to=form.get("OriginalRepliedMessageSid", "") or "",
            latitude=latitude,
            longitude=longitude,
            raw=raw,
        )

    # --- outbound -----------------------------------------------------------------------------------
    def _client(self) -> tuple[Client, _BaseUrlHttpClient]:
        timeout = float(settings.CHANNEL_HTTP_TIMEOUT_SECONDS)
        http_client = _BaseUrlHttpClient(
            base_url=settings.TWILIO_API_BASE_URL, connect_timeout=min(timeout, 5.0), read_timeout=timeout
        )
        client = Client(
            settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http_client, environment={}
        )
        return client, http_client

    def _error(self, exc: Exception, http_client: _BaseUrlHttpClient) -> ChannelError:
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

    def send(self, outbound: OutboundMessage) -> SendResult:
        """Send one message. Raises ChannelError (permanent / transient / ambiguous, see base)."""
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
        client, http_client = self._client()
        try:
            message = client.messages.create(**values)
        except Exception as exc:
            error = self._error(exc, http_client)
            logger.warning(
                "twilio send to %s failed: %s (permanent=%s ambiguous=%s)",
                mask(outbound.to),
                error,
                error.permanent,
                error.ambiguous,
            )
            raise error from exc
        return SendResult(provider_message_id=message.sid)

    def download_media(self, media: Media) -> tuple[bytes, str]:
        if not media.url:
            raise ChannelError("twilio media has no URL", "media_refused", permanent=True)
        base_host = urlsplit(settings.TWILIO_API_BASE_URL).hostname or ""
        return media_fetch(
            url=media.url,
            allowed_hosts=MEDIA_HOSTS | {base_host},
            auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN),
            max_bytes=settings.MEDIA_MAX_BYTES,
            trusted_base_url=settings.TWILIO_API_BASE_URL,
        )

    def check_config(self) -> str:
        client, http_client = self._client()
        try:
            account = client.api.v2010.accounts(settings.TWILIO_ACCOUNT_SID).fetch()
        except Exception as exc:
            raise self._error(exc, http_client) from exc
        return f"Twilio OK: account {account.friendly_name}"


def _kind_for_mime(mime: str) -> MessageKind:
    major = (mime or "").split("/", 1)[0].lower()
    if mime == "image/webp":
        return MessageKind.STICKER
    return {"image": MessageKind.IMAGE, "audio": MessageKind.AUDIO, "video": MessageKind.VIDEO}.get(
        major, MessageKind.DOCUMENT
    )
