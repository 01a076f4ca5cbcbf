"""Calls to ACS Advanced Messaging through the real SDK (`azure-communication-messages`).

Clients are built from `ACS_CONNECTION_STRING` parsed here (the SDK's `from_connection_string` drops the
scheme and forces https, which breaks a local http emulator) with the endpoint's trailing slash stripped (it
would end up in the HMAC string-to-sign and fail auth), or from `ACS_ENDPOINT` + `DefaultAzureCredential`
(managed identity). Settings are read on every call; clients are cached per (endpoint, key).

SDK retries are off (`retry_total=0`): Relay retries in Dramatiq, honouring `Retry-After`, and reuses the same
`Repeatability-Request-ID`, so ACS does not deliver a retried send twice.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from django.conf import settings

from ..base import ChannelError, MessageKind, OutboundMessage

logger = logging.getLogger(__name__)

# Derives a GUID from a non-GUID idempotency key: ACS refuses a Repeatability-Request-ID that is not a GUID.
REPEATABILITY_NAMESPACE = uuid.UUID("9a0f4c52-3d4b-4f55-8d8e-5b1c6c0a7e21")

# Meta WhatsApp error codes that retrying the same request cannot fix, and those that time can.
# (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes, as restated in the reference doc §3.)
PERMANENT_WHATSAPP_CODES = frozenset(
    {
        "470", "131047",  # re-engagement: 24-hour window closed
        "131026",  # message undeliverable
        "131050",  # user stopped marketing messages
        "131051",  # unsupported message type
        "131052", "131053",  # media download / upload error
        "131008", "131009",  # required parameter missing / parameter value invalid
        "132000", "132001", "132005", "132007", "132012", "132015", "132016",  # template problems
        "131021",  # sender = recipient
        "100", "190", "368",  # invalid parameter, token expired, temporarily blocked for policy
    }
)  # fmt: skip
TRANSIENT_WHATSAPP_CODES = frozenset({"130429", "131048", "131056", "131000", "131016", "133004"})
_WHATSAPP_CODE_RE = re.compile(r"^\d{1,6}$")

_clients_lock = threading.Lock()
_clients: dict[tuple[str, str | None, str], Any] = {}


@dataclass(frozen=True)
class AcsConfig:
    endpoint: str
    access_key: str | None  # None → DefaultAzureCredential
    channel_id: str
    timeout: float


def config_read() -> AcsConfig:
    """The ACS settings as they are now. Raises ChannelError(permanent) when they are incomplete."""
    endpoint, key = "", None
    connection_string = (settings.ACS_CONNECTION_STRING or "").strip()
    if connection_string:
        parts: dict[str, str] = {}
        for segment in connection_string.split(";"):
            name, sep, value = segment.partition("=")
            if sep:
                parts[name.strip().lower()] = value.strip()
        endpoint, key = parts.get("endpoint", ""), parts.get("accesskey", "")
        if not endpoint or not key:
            raise ChannelError("ACS_CONNECTION_STRING needs endpoint=…;accesskey=…", "not_configured", permanent=True)
    else:
        endpoint = (getattr(settings, "ACS_ENDPOINT", "") or "").strip()
        if not endpoint:
            raise ChannelError("set ACS_CONNECTION_STRING or ACS_ENDPOINT", "not_configured", permanent=True)
    if not endpoint.startswith(("http://", "https://")):
        endpoint = "https://" + endpoint
    if key is None and endpoint.startswith("http://"):
        # azure-core refuses bearer tokens over plain http; only an access key works against an emulator.
        raise ChannelError("ACS_ENDPOINT with managed identity must be https", "not_configured", permanent=True)
    return AcsConfig(
        endpoint=endpoint.rstrip("/"),
        access_key=key,
        channel_id=(settings.ACS_CHANNEL_REGISTRATION_ID or "").strip(),
        timeout=float(settings.CHANNEL_HTTP_TIMEOUT_SECONDS),
    )


def _transport_options(endpoint: str) -> dict[str, Any]:
    """Client options that read the environment once, when the client is built, instead of on every send.

    A requests session that trusts the environment re-reads the proxy variables (scanning all of os.environ)
    and the CA-bundle variables on every request: about 7 % of the worker's Python function calls per answered
    message in the P2 profile. The same proxies (NO_PROXY honoured) and CA bundle are taken from the environment
    here, and the transport stops looking.
    """
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    options: dict[str, Any] = {
        "transport": RequestsTransport(
            use_env_settings=False,
            connection_verify=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True,
        )
    }
    if proxies := requests.utils.get_environ_proxies(endpoint):
        options["proxies"] = proxies
    return options


def _client(kind: str, config: AcsConfig):
    from azure.communication.messages import MessageTemplateClient, NotificationMessagesClient

    cache_key = (config.endpoint, config.access_key, kind)
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            if config.access_key is not None:
                from azure.core.credentials import AzureKeyCredential

                credential: Any = AzureKeyCredential(config.access_key)
            else:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            cls = NotificationMessagesClient if kind == "notifications" else MessageTemplateClient
            # retry_total=0: Relay's own retries honour Retry-After and keep the repeatability id.
            client = cls(config.endpoint, credential, retry_total=0, **_transport_options(config.endpoint))
            _clients[cache_key] = client
    return client


def notifications_client(config: AcsConfig):
    return _client("notifications", config)


def templates_client(config: AcsConfig):
    return _client("templates", config)


def timeouts(config: AcsConfig) -> dict[str, float]:
    """Per-call transport timeouts (azure-core reads them on each request, so a cached client follows settings)."""
    return {"connection_timeout": config.timeout, "read_timeout": config.timeout}


# --- send -------------------------------------------------------------------------------------------
def repeatability_id(idempotency_key: str) -> str:
    """The Repeatability-Request-ID for a key: the key itself when it is a GUID, else a GUID derived from it
    (uuid5), so every retry of one outbound message carries the same id."""
    key = (idempotency_key or "").strip()
    if not key:
        raise ChannelError("outbound message has no idempotency key", "missing_idempotency_key", permanent=True)
    try:
        uuid.UUID(key)
    except ValueError:
        return str(uuid.uuid5(REPEATABILITY_NAMESPACE, key))
    return key


def repeatability_headers(outbound: OutboundMessage) -> dict[str, str]:
    headers = {"Repeatability-Request-ID": repeatability_id(outbound.idempotency_key)}
    if outbound.first_queued_at is not None:
        first = outbound.first_queued_at
        if first.tzinfo is None:
            first = first.replace(tzinfo=UTC)
        headers["Repeatability-First-Sent"] = format_datetime(first.astimezone(UTC), usegmt=True)
    # Without first_queued_at the SDK stamps "now", which is only stable within one attempt.
    return headers


def notification_build(outbound: OutboundMessage, channel_id: str):
    """The SDK model for `outbound`. Raises ChannelError(permanent) for what ACS cannot send."""
    from azure.communication.messages import models

    to = [outbound.to]
    media = outbound.media
    if outbound.kind is MessageKind.TEXT:
        if not outbound.text:
            raise ChannelError("text message without text", "empty_text", permanent=True)
        return models.TextNotificationContent(channel_registration_id=channel_id, to=to, content=outbound.text)
    if outbound.kind is MessageKind.TEMPLATE:
        if not outbound.template_name or not outbound.template_language:
            raise ChannelError("template message without name or language", "template_incomplete", permanent=True)
        values: dict[str, Any] = {}
        refs = []
        for parameter in outbound.template_parameters:
            values.setdefault(parameter.name, models.MessageTemplateText(name=parameter.name, text=parameter.value))
            refs.append(models.WhatsAppMessageTemplateBindingsComponent(ref_value=parameter.name))
        template = models.MessageTemplate(
            name=outbound.template_name,
            language=outbound.template_language,
            template_values=list(values.values()) or None,
            bindings=models.WhatsAppMessageTemplateBindings(body=refs) if refs else None,
        )
        return models.TemplateNotificationContent(channel_registration_id=channel_id, to=to, template=template)
    if outbound.kind in (MessageKind.IMAGE, MessageKind.DOCUMENT, MessageKind.AUDIO, MessageKind.VIDEO):
        if media is None or not media.url:
            raise ChannelError(f"{outbound.kind} message without a media URL", "media_url_required", permanent=True)
        caption = media.caption or outbound.text or None
        if outbound.kind is MessageKind.IMAGE:
            return models.ImageNotificationContent(
                channel_registration_id=channel_id, to=to, media_uri=media.url, content=caption
            )
        if outbound.kind is MessageKind.DOCUMENT:
            return models.DocumentNotificationContent(
                channel_registration_id=channel_id,
                to=to,
                media_uri=media.url,
                caption=caption,
                file_name=media.file_name or None,
            )
        if outbound.kind is MessageKind.VIDEO:
            return models.VideoNotificationContent(
                channel_registration_id=channel_id, to=to, media_uri=media.url, caption=caption
            )
        return models.AudioNotificationContent(channel_registration_id=channel_id, to=to, media_uri=media.url)
    raise ChannelError(f"ACS cannot send {outbound.kind} messages", "unsupported_kind", permanent=True)


# --- errors -----------------------------------------------------------------------------------------
def retry_after_parse(headers: Any) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or HTTP date) or `retry-after-ms` / `x-ms-retry-after-ms`."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                pass
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _whatsapp_code(error: Any) -> str:
    """Meta's error code when ACS passed one through (error.code, innererror.code or details[].code)."""
    candidates = [getattr(error, "code", None)]
    inner = getattr(error, "innererror", None)
    if isinstance(inner, dict):
        candidates.append(inner.get("code"))
    elif inner is not None:
        candidates.append(getattr(inner, "code", None))
    for detail in getattr(error, "details", None) or []:
        candidates.append(getattr(detail, "code", None))
    for candidate in candidates:
        text = str(candidate or "").strip()
        if _WHATSAPP_CODE_RE.match(text):
            return text
    return ""


def error_map(exc: Exception) -> ChannelError:
    """An SDK / transport exception → ChannelError with the permanence Relay's retries act on."""
    from azure.core.exceptions import (
        AzureError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
        ServiceResponseTimeoutError,
    )

    if isinstance(exc, ChannelError):
        return exc
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        return _http_error_map(exc)
    if isinstance(exc, HttpResponseError):
        # No response at all: a credential that could not get a token (managed identity endpoint down).
        return ChannelError(f"ACS authentication unavailable: {exc.message}", "credential_unavailable")
    if isinstance(exc, ServiceResponseTimeoutError):
        # The request may have reached ACS; a retry with the same repeatability id is answered, not redelivered.
        return ChannelError("ACS did not answer in time", "timeout", ambiguous=True)
    if isinstance(exc, ServiceResponseError):
        return ChannelError(f"ACS connection broke: {exc.message}", "connection_error", ambiguous=True)
    if isinstance(exc, ServiceRequestError):
        # Never left this process (refused connection, DNS, connect timeout).
        return ChannelError(f"ACS unreachable: {exc.message}", "connection_error")
    if isinstance(exc, AzureError):
        return ChannelError(f"ACS call failed: {exc.message}", "azure_error")
    raise exc


def _http_error_map(exc: Any) -> ChannelError:
    status = int(exc.status_code)
    error = getattr(exc, "error", None)
    code = (getattr(error, "code", None) or "").strip() if error is not None else ""
    message = (getattr(error, "message", None) or "").strip() if error is not None else ""
    message = message or (exc.reason or "") or f"HTTP {status}"
    headers = exc.response.headers if exc.response is not None else None
    retry_after = retry_after_parse(headers)
    whatsapp_code = _whatsapp_code(error) if error is not None else ""
    if whatsapp_code in PERMANENT_WHATSAPP_CODES:
        return ChannelError(message, whatsapp_code, permanent=True)
    if whatsapp_code in TRANSIENT_WHATSAPP_CODES:
        return ChannelError(message, whatsapp_code, retry_after=retry_after)
    if status == 429:
        return ChannelError(message, code or "rate_limited", retry_after=retry_after)
    if status == 412:
        # ACS tracks a repeatability id for 5 minutes; past that it will not say whether the first attempt
        # was delivered, so resending could double the message.
        return ChannelError(
            "ACS no longer tracks this send's Repeatability-Request-ID (first sent more than 5 minutes ago); "
            "it may or may not have been delivered",
            "repeatability_expired",
            permanent=True,
            ambiguous=True,
        )
    if status in (408, 409) or status >= 500:
        # 409: the original request with this repeatability id is still being processed.
        return ChannelError(message, code or f"http_{status}", retry_after=retry_after)
    return ChannelError(message, code or f"http_{status}", permanent=True)
