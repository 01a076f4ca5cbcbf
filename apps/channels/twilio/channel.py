"""The Twilio channel: webhook signatures through twilio's RequestValidator, parsing (`inbound`), sends and
media downloads through the twilio library (`outbound`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

from apps.core.phone import mask

from ..base import Channel, ChannelError, InboundEvent, Media, OutboundMessage, SendResult, SignatureError, StatusEvent
from ..media import media_fetch
from . import inbound, outbound

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

MEDIA_HOSTS = frozenset({"api.twilio.com", ".twiliocdn.com", "media.twiliocdn.com"})


class TwilioChannel(Channel):
    name = inbound.CHANNEL
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
        return inbound.form_parse(request.POST, request.path)

    # --- outbound -----------------------------------------------------------------------------------
    def send(self, outbound_message: OutboundMessage) -> SendResult:
        """Send one message. Raises ChannelError (permanent / transient / ambiguous, see base)."""
        values = outbound.values_build(outbound_message)
        client, http_client = outbound.client_build()
        try:
            message = client.messages.create(**values)
        except Exception as exc:
            error = outbound.error_map(exc, http_client)
            logger.warning(
                "twilio send to %s failed: %s (permanent=%s ambiguous=%s)",
                mask(outbound_message.to),
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
        client, http_client = outbound.client_build()
        try:
            account = client.api.v2010.accounts(settings.TWILIO_ACCOUNT_SID).fetch()
        except Exception as exc:
            raise outbound.error_map(exc, http_client) from exc
        return f"Twilio OK: account {account.friendly_name}"
