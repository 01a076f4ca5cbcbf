"""The Meta WhatsApp Cloud API channel: the webhook's handshake and signature, parsing (`inbound`), sends and
media downloads through the Graph API (`outbound`)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden

from apps.core.phone import mask

from ..base import Channel, ChannelError, InboundEvent, Media, OutboundMessage, SendResult, SignatureError, StatusEvent
from ..media import media_fetch
from . import inbound, outbound
from .inbound import as_dict, as_str

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

MEDIA_HOSTS = frozenset({"lookaside.fbsbx.com", ".fbcdn.net", ".whatsapp.net"})
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_MEDIA_ID = re.compile(r"[0-9A-Za-z_.-]{1,128}")


class MetaChannel(Channel):
    name = inbound.CHANNEL
    idempotent_send = False

    def enabled(self) -> bool:
        return bool(settings.META_ENABLED)

    # --- inbound ------------------------------------------------------------------------------------
    def handshake(self, request: HttpRequest) -> HttpResponse | None:
        """Answer Meta's GET subscription check: 200 with hub.challenge, or 403 when mode or token is wrong.

        Answers the 403 itself (as pywa does) rather than raising, so it holds whatever the calling view does
        with GET requests.
        """
        if request.method != "GET":
            return None
        mode = request.GET.get("hub.mode", "")
        token = request.GET.get("hub.verify_token", "")
        challenge = request.GET.get("hub.challenge", "")
        expected = settings.META_VERIFY_TOKEN
        if (
            mode == "subscribe"
            and expected
            and token
            and hmac.compare_digest(token.encode("utf-8", "surrogatepass"), expected.encode())
        ):
            return HttpResponse(challenge.encode("utf-8", "replace")[:200], content_type="text/plain")
        logger.warning("meta subscription check refused (mode %r, token %s)", mode, "given" if token else "missing")
        return HttpResponseForbidden("Forbidden", content_type="text/plain")

    def verify(self, request: HttpRequest) -> None:
        if settings.SKIP_WEBHOOK_SIGNATURE_VERIFICATION and settings.DEBUG:
            return
        header = request.headers.get("X-Hub-Signature-256", "")
        if not header:
            raise SignatureError("missing X-Hub-Signature-256")
        if not settings.META_APP_SECRET:
            raise SignatureError("META_APP_SECRET is not configured")
        received = header.removeprefix("sha256=")
        if not header.startswith("sha256=") or not _HEX64.fullmatch(received):
            raise SignatureError("X-Hub-Signature-256 is not sha256=<64 hex>")
        expected = hmac.new(settings.META_APP_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, received.lower()):
            raise SignatureError("X-Hub-Signature-256 does not match")

    def parse(self, request: HttpRequest) -> list[InboundEvent | StatusEvent]:
        return inbound.events_parse(request.body)

    # --- outbound -----------------------------------------------------------------------------------
    def build_payload(self, outbound_message: OutboundMessage) -> dict[str, Any]:
        """The Graph API body for the message. Raises ChannelError(permanent) for a message Meta would refuse."""
        return outbound.payload_build(outbound_message)

    def send(self, outbound_message: OutboundMessage) -> SendResult:
        """Send one message. Raises ChannelError (permanent / transient / ambiguous, see base)."""
        payload = outbound.payload_build(outbound_message)
        try:
            response = outbound.request("POST", outbound.url(f"{settings.META_PHONE_NUMBER_ID}/messages"), json=payload)
            if response.status_code >= 300:
                raise outbound.error_from_response(response)
            try:
                message_id = as_str(as_dict(response.json()).get("messages", [{}])[0].get("id"))
            except (ValueError, IndexError, AttributeError, TypeError):
                message_id = ""
            if not message_id:
                # Accepted (2xx) but unreadable: it may be on its way; do not send it again.
                raise ChannelError("Graph API answer carries no message id", "bad_response", ambiguous=True)
        except ChannelError as error:
            logger.warning(
                "meta send to %s failed: %s (permanent=%s ambiguous=%s)",
                mask(outbound_message.to),
                error,
                error.permanent,
                error.ambiguous,
            )
            raise
        return SendResult(provider_message_id=message_id)

    def download_media(self, media: Media) -> tuple[bytes, str]:
        if not media.provider_id:
            raise ChannelError("meta media has no id", "media_refused", permanent=True)
        if not _MEDIA_ID.fullmatch(media.provider_id):
            raise ChannelError("meta media id is not an id", "media_refused", permanent=True)
        response = outbound.request("GET", outbound.url(media.provider_id))
        if response.status_code >= 300:
            raise outbound.error_from_response(response)
        try:
            info = as_dict(response.json())
        except ValueError as exc:
            raise ChannelError("Graph media answer is not JSON", "bad_response") from exc
        url = as_str(info.get("url"))
        if not url:
            raise ChannelError("Graph media answer has no url", "media_refused", permanent=True)
        graph_host = urlsplit(settings.META_GRAPH_BASE_URL).hostname or ""
        content, mime = media_fetch(
            url=url,
            allowed_hosts=MEDIA_HOSTS | {graph_host},
            headers=outbound.headers(),
            max_bytes=settings.MEDIA_MAX_BYTES,
            trusted_base_url=settings.META_GRAPH_BASE_URL,
        )
        return content, as_str(info.get("mime_type")) or mime

    def check_config(self) -> str:
        response = outbound.request(
            "GET",
            outbound.url(settings.META_PHONE_NUMBER_ID),
            params={"fields": "display_phone_number,verified_name"},
        )
        if response.status_code >= 300:
            raise outbound.error_from_response(response)
        info = as_dict(response.json())
        name = as_str(info.get("verified_name"))
        return f"Meta OK: {as_str(info.get('display_phone_number'))}" + (f" ({name})" if name else "")
