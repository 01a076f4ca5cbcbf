"""Meta WhatsApp Cloud API: signed JSON webhooks in, Graph API `/{phone_number_id}/messages` out.

The webhook is verified with HMAC-SHA256 of the raw body keyed with the app secret (`X-Hub-Signature-256`);
the GET subscription handshake echoes `hub.challenge`. One delivery may carry several entries × changes ×
messages / statuses (Meta batches), and every one is parsed; an item that cannot be read is logged and
skipped. Sends use httpx with explicit timeouts; Graph POSTs are not idempotent, so a timeout after the request
left is ambiguous and never resent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden

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

MEDIA_HOSTS = frozenset({"lookaside.fbsbx.com", ".fbcdn.net", ".whatsapp.net"})
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")

STATUS_MAP = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}
# "played" (voice notes) and any future value carry nothing the outbound row tracks.

MEDIA_KINDS = {
    "image": MessageKind.IMAGE,
    "audio": MessageKind.AUDIO,
    "document": MessageKind.DOCUMENT,
    "video": MessageKind.VIDEO,
    "sticker": MessageKind.STICKER,
}

WINDOW_CLOSED = "131047"
# Throughput (130429), pair rate (131056), app / WABA API call limits (4, 80007): wait and retry.
RATE_CODES = frozenset({"130429", "131056", "4", "80007"})
TEMPLATE_ERROR_CODES = frozenset({"132000", "132001", "132005", "132012", "132015", "132016"})
PERMANENT_CODES = frozenset(
    {WINDOW_CLOSED, "131050", "131026", "131049", "131048", "131051", "131030", "131042", "100", "190"}
    | TEMPLATE_ERROR_CODES
)
# Provider message ids are stored in a 200-character column; a wamid is far shorter.
MAX_ID_LENGTH = 200
# Meta's guidance for the pair limit is about one message per 6 s to one user.
PAIR_RATE_RETRY_SECONDS = 6.0


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(tz=UTC)


def _phone_or_empty(wa_id: Any) -> str:
    if not isinstance(wa_id, str) or not wa_id:
        return ""
    try:
        return phone_normalize(wa_id if wa_id.startswith("+") else "+" + wa_id)
    except InvalidPhoneNumber:
        return ""


def _bsuid_or_empty(value: Any) -> str:
    return value if isinstance(value, str) and is_bsuid(value) else ""


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _coordinate(value: Any) -> float | None:
    """A finite float, or None when absent. Raises ValueError for garbage (the item is then skipped)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a coordinate is not a boolean")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("coordinate is not finite")
    return number


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(value: Any) -> Any:
    """`value` with NULs removed and lone UTF-16 surrogates (valid JSON escapes) replaced by U+FFFD.

    PostgreSQL text and jsonb accept neither, and the raw payload is stored verbatim.
    """
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


class MetaChannel(Channel):
    name = "meta"
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
        try:
            # NaN / Infinity are not JSON (and jsonb refuses them).
            payload = _storable(json.loads(request.body, parse_constant=_refuse_constant))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise MalformedPayload("body is not JSON") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("entry", []), list):
            raise MalformedPayload("body is not a WhatsApp webhook object")
        if payload.get("object") not in (None, "whatsapp_business_account"):
            logger.info("meta webhook for object %r ignored", payload.get("object"))
            return []
        events: list[InboundEvent | StatusEvent] = []
        for entry in _as_list(payload.get("entry")):
            for change in _as_list(_as_dict(entry).get("changes")):
                change = _as_dict(change)
                if change.get("field", "messages") != "messages":
                    logger.info("meta webhook field %r ignored", change.get("field"))
                    continue
                events.extend(self._parse_value(_as_dict(change.get("value"))))
        return events

    def _parse_value(self, value: dict) -> list[InboundEvent | StatusEvent]:
        recipient = _str(_as_dict(value.get("metadata")).get("phone_number_id"))
        names: dict[str, str] = {}
        contacts = [_as_dict(c) for c in _as_list(value.get("contacts"))]
        for contact in contacts:
            name = _str(_as_dict(contact.get("profile")).get("name"))
            for key in ("wa_id", "user_id"):
                if contact.get(key):
                    names[_str(contact[key])] = name
        events: list[InboundEvent | StatusEvent] = []
        for error in _as_list(value.get("errors")):
            error = _as_dict(error)
            logger.warning("meta webhook error %s: %s", error.get("code"), error.get("title") or error.get("message"))
        for item in _as_list(value.get("messages")):
            try:
                event = self._parse_message(_as_dict(item), recipient, names, contacts)
            except Exception:  # one unreadable item must not cost the rest of the batch
                logger.exception("meta message skipped (unreadable)")
                continue
            if event is not None:
                events.append(event)
        for item in _as_list(value.get("statuses")):
            try:
                status = self._parse_status(_as_dict(item), recipient)
            except Exception:
                logger.exception("meta status skipped (unreadable)")
                continue
            if status is not None:
                events.append(status)
        return events

    def _parse_message(
        self, message: dict, recipient: str, names: dict[str, str], contacts: list[dict]
    ) -> InboundEvent | None:
        message_id = _str(message.get("id"))
        if not message_id or len(message_id) > MAX_ID_LENGTH:
            logger.warning("meta message without a usable id skipped")
            return None
        wa_id = _str(message.get("from"))
        sender_phone = _phone_or_empty(wa_id)
        bsuid = _bsuid_or_empty(message.get("from_user_id"))
        if not bsuid and len(contacts) == 1:
            bsuid = _bsuid_or_empty(contacts[0].get("user_id"))
        if not sender_phone and is_bsuid(wa_id):
            bsuid = bsuid or wa_id
        if not sender_phone and not bsuid:
            logger.warning("meta message %s has neither a phone number nor a user id; skipped", message_id)
            return None
        profile_name = (
            names.get(wa_id)
            or names.get(bsuid)
            or (_str(_as_dict(contacts[0].get("profile")).get("name")) if len(contacts) == 1 else "")
        )
        message_type = _str(message.get("type"))
        kind, text, payload, media = MessageKind.UNKNOWN, "", "", None
        latitude = longitude = None
        reply_to = _str(_as_dict(message.get("context")).get("id"))
        body = _as_dict(message.get(message_type)) if message_type else {}
        if message_type == "text":
            kind, text = MessageKind.TEXT, _str(body.get("body"))
        elif message_type in MEDIA_KINDS:
            kind = MEDIA_KINDS[message_type]
            text = _str(body.get("caption"))
            media = Media(
                mime_type=_str(body.get("mime_type")),
                provider_id=_str(body.get("id")),
                file_name=_str(body.get("filename")),
                caption=text,
            )
        elif message_type == "interactive":
            kind = MessageKind.INTERACTIVE
            reply = _as_dict(body.get(_str(body.get("type"))))  # button_reply / list_reply / nfm_reply
            payload, text = _str(reply.get("id")), _str(reply.get("title"))
        elif message_type == "button":
            kind, payload, text = MessageKind.BUTTON, _str(body.get("payload")), _str(body.get("text"))
        elif message_type == "location":
            kind = MessageKind.LOCATION
            latitude, longitude = _coordinate(body.get("latitude")), _coordinate(body.get("longitude"))
            text = _str(body.get("name")) or _str(body.get("address"))
        elif message_type == "reaction":
            kind, text = MessageKind.REACTION, _str(body.get("emoji"))
            reply_to = _str(body.get("message_id")) or reply_to
        else:
            # contacts, order, system, unsupported, …: kept (raw) for the log, answered by the pipeline's default.
            logger.info("meta message %s of type %r has no typed form", message_id, message_type)
        return InboundEvent(
            channel=self.name,
            provider_message_id=message_id,
            sender_phone=sender_phone,
            sender_bsuid=bsuid,
            received_at=_timestamp(message.get("timestamp")),
            kind=kind,
            text=text,
            profile_name=profile_name,
            recipient=recipient,
            media=media,
            payload=payload,
            reply_to=reply_to,
            latitude=latitude,
            longitude=longitude,
            raw=message,
        )

    def _parse_status(self, item: dict, recipient: str) -> StatusEvent | None:
        message_id = _str(item.get("id"))
        status = STATUS_MAP.get(_str(item.get("status")))
        if not message_id or len(message_id) > MAX_ID_LENGTH or status is None:
            logger.debug("meta status %r for %s ignored", item.get("status"), message_id)
            return None
        errors = [_as_dict(e) for e in _as_list(item.get("errors"))]
        error = errors[0] if errors else {}
        error_message = (
            _str(_as_dict(error.get("error_data")).get("details"))
            or _str(error.get("message"))
            or _str(error.get("title"))
        )
        return StatusEvent(
            channel=self.name,
            provider_message_id=message_id,
            status=status,
            occurred_at=_timestamp(item.get("timestamp")),
            error_code=_str(error.get("code")) if error else "",
            error_message=error_message,
            recipient=_phone_or_empty(_str(item.get("recipient_id")))
            or _str(item.get("recipient_user_id"))
            or _str(item.get("recipient_id")),
            raw=item,
        )

    # --- outbound -----------------------------------------------------------------------------------
    @staticmethod
    def _timeout() -> httpx.Timeout:
        seconds = float(settings.CHANNEL_HTTP_TIMEOUT_SECONDS)
        return httpx.Timeout(seconds, connect=min(seconds, 5.0))

    @staticmethod
    def _headers() -> dict[str, str]:
        return {"Authorization": f"Bearer {settings.META_ACCESS_TOKEN}"}

    @staticmethod
    def _url(path: str) -> str:
        return settings.META_GRAPH_BASE_URL.rstrip("/") + "/" + path.lstrip("/")

    def build_payload(self, outbound: OutboundMessage) -> dict[str, Any]:
        """The Graph API body for `outbound`. Raises ChannelError(permanent) for a message Meta would refuse."""
        to = outbound.to.removeprefix("+")
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        if outbound.kind == MessageKind.TEMPLATE or outbound.template_name:
            template: dict[str, Any] = {
                "name": outbound.template_name,
                "language": {"code": outbound.template_language or "en"},
            }
            if outbound.template_parameters:
                parameters = []
                for parameter in outbound.template_parameters:
                    if not parameter.value.strip():
                        raise ChannelError(f"template parameter {parameter.name!r} is empty", "132000", permanent=True)
                    item = {"type": "text", "text": parameter.value}
                    if outbound.template_named_parameters:
                        item["parameter_name"] = parameter.name
                    parameters.append(item)
                template["components"] = [{"type": "body", "parameters": parameters}]
            payload.update(type="template", template=template)
        elif outbound.media is not None and outbound.media.url:
            media_type = outbound.kind.value if outbound.kind.value in MEDIA_KINDS else "document"
            media_object: dict[str, Any] = {"link": outbound.media.url}
            caption = outbound.media.caption or outbound.text
            if caption and media_type in ("image", "video", "document"):
                media_object["caption"] = caption
            if media_type == "document" and outbound.media.file_name:
                media_object["filename"] = outbound.media.file_name
            payload.update({"type": media_type, media_type: media_object})
        else:
            if not outbound.text.strip():
                raise ChannelError("empty message body", "empty_message", permanent=True)
            payload.update(type="text", text={"preview_url": False, "body": outbound.text})
        return payload

    def _error_from_response(self, response: httpx.Response) -> ChannelError:
        try:
            error = _as_dict(_as_dict(response.json()).get("error"))
        except ValueError:
            error = {}
        code = _str(error.get("code")) or str(response.status_code)
        message = _str(error.get("message")) or f"Graph API HTTP {response.status_code}"
        details = _str(_as_dict(error.get("error_data")).get("details"))
        if details:
            message = f"{message} ({details})"
        retry_after = None
        header = response.headers.get("retry-after")
        if header:
            try:
                retry_after = max(0.0, float(header))
            except ValueError:
                retry_after = None
        if code in RATE_CODES or response.status_code == 429:
            if retry_after is None and code == "131056":
                retry_after = PAIR_RATE_RETRY_SECONDS
            return ChannelError(message, code, retry_after=retry_after)
        if code in PERMANENT_CODES:
            return ChannelError(message, code, permanent=True)
        if response.status_code >= 500:
            return ChannelError(message, code, retry_after=retry_after)
        return ChannelError(message, code, permanent=True)

    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """One Graph call. Network failures become ChannelError; the response is returned whatever its status."""
        try:
            return httpx.request(method, url, headers=self._headers(), timeout=self._timeout(), **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ChannelError(f"Graph API unreachable: {type(exc).__name__}", "network") from exc
        except httpx.HTTPError as exc:
            # Read / write timeout or a dropped connection after the request left: Meta may have accepted it.
            raise ChannelError(
                f"no answer from the Graph API: {type(exc).__name__}", "timeout", ambiguous=True
            ) from exc

    def send(self, outbound: OutboundMessage) -> SendResult:
        """Send one message. Raises ChannelError (permanent / transient / ambiguous, see base)."""
        payload = self.build_payload(outbound)
        try:
            response = self._request("POST", self._url(f"{settings.META_PHONE_NUMBER_ID}/messages"), json=payload)
            if response.status_code >= 300:
                raise self._error_from_response(response)
            try:
                message_id = _str(_as_dict(response.json()).get("messages", [{}])[0].get("id"))
            except (ValueError, IndexError, AttributeError, TypeError):
                message_id = ""
            if not message_id:
                # Accepted (2xx) but unreadable: it may be on its way; do not send it again.
                raise ChannelError("Graph API answer carries no message id", "bad_response", ambiguous=True)
        except ChannelError as error:
            logger.warning(
                "meta send to %s failed: %s (permanent=%s ambiguous=%s)",
                mask(outbound.to),
                error,
                error.permanent,
                error.ambiguous,
            )
            raise
        return SendResult(provider_message_id=message_id)

    def download_media(self, media: Media) -> tuple[bytes, str]:
        if not media.provider_id:
            raise ChannelError("meta media has no id", "media_refused", permanent=True)
        if not re.fullmatch(r"[0-9A-Za-z_.-]{1,128}", media.provider_id):
            raise ChannelError("meta media id is not an id", "media_refused", permanent=True)
        response = self._request("GET", self._url(media.provider_id))
        if response.status_code >= 300:
            raise self._error_from_response(response)
        try:
            info = _as_dict(response.json())
        except ValueError as exc:
            raise ChannelError("Graph media answer is not JSON", "bad_response") from exc
        url = _str(info.get("url"))
        if not url:
            raise ChannelError("Graph media answer has no url", "media_refused", permanent=True)
        graph_host = urlsplit(settings.META_GRAPH_BASE_URL).hostname or ""
        content, mime = media_fetch(
            url=url,
            allowed_hosts=MEDIA_HOSTS | {graph_host},
            headers=self._headers(),
            max_bytes=settings.MEDIA_MAX_BYTES,
            trusted_base_url=settings.META_GRAPH_BASE_URL,
        )
        return content, _str(info.get("mime_type")) or mime

    def check_config(self) -> str:
        response = self._request(
            "GET",
            self._url(settings.META_PHONE_NUMBER_ID),
            params={"fields": "display_phone_number,verified_name"},
        )
        if response.status_code >= 300:
            raise self._error_from_response(response)
        info = _as_dict(response.json())
        name = _str(info.get("verified_name"))
        return f"Meta OK: {_str(info.get('display_phone_number'))}" + (f" ({name})" if name else "")
