"""The ACS (Azure Communication Services Advanced Messaging) channel: Event Grid in, the ACS SDK out."""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from apps.core.phone import mask

from ..base import (
    Channel,
    ChannelError,
    InboundEvent,
    MalformedPayload,
    Media,
    OutboundMessage,
    SendResult,
    SignatureError,
    StatusEvent,
)
from . import inbound, outbound

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

DEFAULT_ORIGIN = "eventgrid.azure.net"
_ORIGIN_RE = re.compile(r"[A-Za-z0-9.-]{1,253}")
DOWNLOAD_CHUNK = 64 * 1024


def _secrets() -> list[str]:
    configured = settings.ACS_EVENTGRID_SECRET
    if isinstance(configured, str):
        configured = [configured]
    return [secret for secret in (configured or []) if secret]


class AcsChannel(Channel):
    name: ClassVar[str] = "acs"
    # ACS dedupes on Repeatability-Request-ID (the outbound idempotency key), so resending is harmless.
    idempotent_send: ClassVar[bool] = True

    def enabled(self) -> bool:
        return bool(settings.ACS_ENABLED)

    # --- inbound ------------------------------------------------------------------------------------
    def verify(self, request: HttpRequest) -> None:
        """Event Grid carries the subscription's `?code=` secret on every delivery; any configured secret
        (several during rotation) is accepted. Every secret is compared, in constant time each."""
        if settings.SKIP_WEBHOOK_SIGNATURE_VERIFICATION and settings.DEBUG:
            return
        secrets = _secrets()
        if not secrets:
            raise SignatureError("ACS_EVENTGRID_SECRET is not configured")
        code = request.GET.get("code", "")
        if not code:
            raise SignatureError("missing ?code= secret")
        presented = code.encode()
        matched = False
        for secret in secrets:
            matched |= hmac.compare_digest(presented, secret.encode())
        if not matched:
            raise SignatureError("wrong ?code= secret")

    def handshake(self, request: HttpRequest) -> HttpResponse | None:
        """CloudEvents' OPTIONS abuse-protection check, and Event Grid's SubscriptionValidationEvent (which
        must be answered 200, not 202, with the code)."""
        if request.method == "OPTIONS":
            origin = request.headers.get("WebHook-Request-Origin", "").strip()
            response = HttpResponse(status=200)
            response["WebHook-Allowed-Origin"] = origin if _ORIGIN_RE.fullmatch(origin) else DEFAULT_ORIGIN
            response["WebHook-Allowed-Rate"] = "*"
            response["Allow"] = "POST, OPTIONS"
            return response
        if request.method != "POST":
            return None
        try:
            items = inbound.load_items(request.body)
        except MalformedPayload:
            return None  # parse() answers 400
        code = inbound.validation_code(items)
        if code is None:
            return None
        logger.info("acs: answering Event Grid subscription validation")
        return JsonResponse({"validationResponse": code})

    def parse(self, request: HttpRequest) -> list[InboundEvent | StatusEvent]:
        return inbound.parse_items(inbound.load_items(request.body))

    # --- outbound -----------------------------------------------------------------------------------
    def send(self, outbound_message: OutboundMessage) -> SendResult:
        """Send through `NotificationMessagesClient.send` with `Repeatability-Request-ID` = the idempotency
        key (a GUID derived from it when it is not one) and `Repeatability-First-Sent` = first_queued_at.

        Returns the ACS message id (status events carry it back). Raises ChannelError.
        """
        config = outbound.config_read()
        if not config.channel_id:
            raise ChannelError("ACS_CHANNEL_REGISTRATION_ID is not set", "not_configured", permanent=True)
        body = outbound.notification_build(outbound_message, config.channel_id)
        headers = outbound.repeatability_headers(outbound_message)
        client = outbound.notifications_client(config)
        try:
            result = client.send(body, headers=headers, **outbound.timeouts(config))
        except Exception as exc:
            error = outbound.error_map(exc)
            logger.warning(
                "acs: send %s to %s failed: %s (permanent=%s)",
                outbound_message.kind,
                mask(outbound_message.to),
                error,
                error.permanent,
            )
            raise error from exc
        receipts = getattr(result, "receipts", None) or []
        message_id = getattr(receipts[0], "message_id", "") if receipts else ""
        if not message_id:
            # 202 without a receipt: ask again with the same repeatability id, ACS answers the original.
            raise ChannelError("ACS accepted the message but returned no receipt", "no_receipt", ambiguous=True)
        logger.info("acs: sent %s to %s as %s", outbound_message.kind, mask(outbound_message.to), message_id)
        return SendResult(provider_message_id=message_id)

    def download_media(self, media: Media) -> tuple[bytes, str]:
        """The media's bytes via `download_media(id)`, never more than MEDIA_MAX_BYTES: reading stops past the
        cap (ChannelError permanent `media_too_large`). Returns (content, mime type)."""
        if not media.provider_id:
            raise ChannelError("media has no ACS id", "media_id_required", permanent=True)
        config = outbound.config_read()
        limit = int(settings.MEDIA_MAX_BYTES)
        client = outbound.notifications_client(config)

        def keep_response(pipeline_response, deserialized, headers):
            return pipeline_response.http_response, deserialized

        try:
            # A GET is safe to repeat: one retry of a connection error (a pooled keep-alive connection the server
            # had just closed), never of an HTTP status, which the media actor's own retries handle.
            response, chunks = client.download_media(
                media.provider_id, cls=keep_response, retry_total=1, retry_status=0, **outbound.timeouts(config)
            )
        except Exception as exc:
            raise outbound.error_map(exc) from exc
        try:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise ChannelError(f"media is {declared} bytes, over {limit}", "media_too_large", permanent=True)
            content = bytearray()
            try:
                for chunk in chunks:
                    content.extend(chunk)
                    if len(content) > limit:
                        raise ChannelError(f"media is over {limit} bytes", "media_too_large", permanent=True)
            except ChannelError:
                raise
            except Exception as exc:
                raise outbound.error_map(exc) from exc
        finally:
            response.close()
        mime_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        if not mime_type or mime_type == "application/octet-stream":
            mime_type = media.mime_type or "application/octet-stream"
        return bytes(content), mime_type

    def templates_list(self, *, channel_id: str = "", limit: int = 10_000) -> list[AcsTemplate]:
        """Every template ACS lists for the channel (all pages, at most `limit`). Raises ChannelError."""
        config = outbound.config_read()
        channel_id = channel_id or config.channel_id
        if not channel_id:
            raise ChannelError("ACS_CHANNEL_REGISTRATION_ID is not set", "not_configured", permanent=True)
        client = outbound.templates_client(config)
        templates: list[AcsTemplate] = []
        try:
            for item in client.list_templates(channel_id, **outbound.timeouts(config)):
                templates.append(
                    AcsTemplate(
                        name=str(item.get("name") or ""),
                        language=str(item.get("language") or ""),
                        status=str(item.get("status") or ""),
                        kind=str(item.get("kind") or ""),
                        content=item.get("content") if isinstance(item.get("content"), dict) else {},
                    )
                )
                if len(templates) >= limit:
                    logger.warning("acs: stopped listing templates at %d", limit)
                    break
        except Exception as exc:
            raise outbound.error_map(exc) from exc
        return templates

    def check_config(self) -> str:
        """List the first page of the channel's templates: proves endpoint, credentials and channel id."""
        config = outbound.config_read()
        if not config.channel_id:
            raise ChannelError("ACS_CHANNEL_REGISTRATION_ID is not set", "not_configured", permanent=True)
        client = outbound.templates_client(config)
        try:
            pages = client.list_templates(config.channel_id, **outbound.timeouts(config)).by_page()
            first = list(next(pages, []))
            more = bool(pages.continuation_token)
        except Exception as exc:
            raise outbound.error_map(exc) from exc
        count = f"{len(first)}{'+' if more else ''}"
        return f"ACS OK: {count} templates on channel {config.channel_id}"


@dataclass(frozen=True)
class AcsTemplate:
    """A template as ACS lists it; `content` is Meta's raw template JSON (components, category, …)."""

    name: str
    language: str
    status: str  # approved | rejected | pending | paused
    kind: str = "whatsApp"
    content: dict[str, Any] = field(default_factory=dict)
