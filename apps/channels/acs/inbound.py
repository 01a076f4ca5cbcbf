"""Event Grid deliveries from ACS Advanced Messaging → typed `InboundEvent` / `StatusEvent`.

Both envelopes are read: the Event Grid schema (a JSON array of `{id, eventType, data, …}`, or a bare object,
which the ACS docs show once) and CloudEvents 1.0 (`{specversion, type, id, data, …}`, single or batch).
The body is authenticated before we get here but still treated as hostile: every field is type-checked and
bounded, NUL characters (PostgreSQL refuses them) are dropped, and one unreadable item is logged and skipped,
never fatal to the rest of the batch.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.core.phone import InvalidPhoneNumber, is_bsuid, phone_normalize

from ..base import DeliveryStatus, InboundEvent, MalformedPayload, Media, MessageKind, StatusEvent

logger = logging.getLogger(__name__)

CHANNEL = "acs"
RECEIVED = "Microsoft.Communication.AdvancedMessageReceived"
STATUS_UPDATED = "Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

# Bounds for hostile input. Real ids are GUIDs; WhatsApp text is at most 4096 characters.
MAX_ID = 200
MAX_BSUID = 80
MAX_TEXT = 16_384
MAX_SHORT = 500
MAX_RAW_DEPTH = 20
# WhatsApp Business messaging did not exist before this; anything earlier is a broken clock or a forgery.
EARLIEST_PLAUSIBLE = datetime(2015, 1, 1, tzinfo=UTC)
# A timestamp in the future would stretch the 24-hour window; allow only clock skew.
FUTURE_TOLERANCE = timedelta(minutes=10)

_KINDS = {kind.value: kind for kind in MessageKind}
_MEDIA_KINDS = frozenset({"image", "document", "audio", "video", "sticker"})
_STATUSES = {status.value: status for status in DeliveryStatus}  # Sent | Delivered | Read | Failed


class SkipItem(Exception):
    """This item cannot become an event; the reason is logged."""


def load_items(body: bytes) -> list[Any]:
    """The delivery's items, in order. Raises MalformedPayload unless the body is a JSON object or list."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedPayload(f"body is not JSON: {type(exc).__name__}") from None
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        return payload
    raise MalformedPayload("body must be a JSON object or an array of events")


def event_type(item: Any) -> str:
    """`eventType` (Event Grid schema) or `type` (CloudEvents); "" when absent or not a string."""
    if not isinstance(item, dict):
        return ""
    value = item.get("eventType") if "eventType" in item else item.get("type")
    return value if isinstance(value, str) else ""


def validation_code(items: list[Any]) -> str | None:
    """The code of a SubscriptionValidationEvent among the items, if any."""
    for item in items:
        if event_type(item) == SUBSCRIPTION_VALIDATION:
            data = _data(item)
            code = clean_str(data.get("validationCode"), MAX_SHORT)
            if code:
                return code
    return None


def parse_items(items: list[Any]) -> list[InboundEvent | StatusEvent]:
    events: list[InboundEvent | StatusEvent] = []
    for index, item in enumerate(items):
        kind = event_type(item)
        try:
            if kind == RECEIVED:
                events.append(_received(item))
            elif kind == STATUS_UPDATED:
                events.append(_status(item))
            elif kind == SUBSCRIPTION_VALIDATION:
                continue  # answered by the handshake
            else:
                logger.info("acs: skipping event %d of type %r", index, clean_str(kind, 120) or type(item).__name__)
        except SkipItem as exc:
            logger.warning("acs: skipping event %d (%s): %s", index, kind, exc)
        except Exception:  # one bad item never blocks the others
            logger.exception("acs: skipping unreadable event %d (%s)", index, kind)
    return events


# --- items ------------------------------------------------------------------------------------------
def _data(item: dict[str, Any]) -> dict[str, Any]:
    data = item.get("data")
    if isinstance(data, str):  # CloudEvents producers may send data as a JSON string
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            data = None
    return data if isinstance(data, dict) else {}


def _received(item: dict[str, Any]) -> InboundEvent:
    data = _data(item)
    if not data:
        raise SkipItem("no data object")
    message_id = _provider_id(data.get("messageId")) or _provider_id(item.get("id"))
    if not message_id:
        raise SkipItem("no messageId and no event id")
    sender_phone, sender_bsuid = _sender(data)
    message_type = clean_str(data.get("messageType"), 40).lower()
    kind = _KINDS.get(message_type, MessageKind.UNKNOWN)
    if kind is MessageKind.TEMPLATE:  # users cannot send templates; never trust one
        kind = MessageKind.UNKNOWN
    fields: dict[str, Any] = {}
    context = _obj(data.get("context"))
    reply_to = clean_str(context.get("id"), MAX_ID)
    text = ""
    if kind is MessageKind.TEXT:
        text = clean_str(data.get("content"), MAX_TEXT)
    elif message_type in _MEDIA_KINDS:
        media = _obj(data.get("media"))
        caption = clean_str(media.get("caption"), MAX_TEXT)
        fields["media"] = Media(
            mime_type=clean_str(media.get("mimeType"), 200),
            provider_id=clean_str(media.get("id"), MAX_ID),
            file_name=clean_str(media.get("fileName"), 255),
            caption=caption,
        )
        text = caption
    elif kind is MessageKind.BUTTON:
        button = _obj(data.get("button"))
        text = clean_str(button.get("text"), MAX_SHORT)
        fields["payload"] = clean_str(button.get("payload"), MAX_SHORT)
    elif kind is MessageKind.INTERACTIVE:
        interactive = _obj(data.get("interactive"))
        reply_kind = clean_str(interactive.get("type"), 40)
        reply = _obj(interactive.get(reply_kind)) if reply_kind in ("buttonReply", "listReply") else {}
        text = clean_str(reply.get("title"), MAX_SHORT)
        fields["payload"] = clean_str(reply.get("id"), MAX_SHORT)
    elif kind is MessageKind.REACTION:
        reaction = _obj(data.get("reaction"))
        text = clean_str(reaction.get("emoji"), 40)
        reply_to = clean_str(reaction.get("messageId"), MAX_ID) or reply_to
    elif kind is MessageKind.LOCATION:
        location = _obj(data.get("location"))
        latitude = _coordinate(location.get("latitude"), 90)
        longitude = _coordinate(location.get("longitude"), 180)
        if latitude is not None and longitude is not None:
            fields["latitude"], fields["longitude"] = latitude, longitude
        parts = (clean_str(location.get("name"), MAX_SHORT), clean_str(location.get("address"), MAX_SHORT))
        text = " — ".join(part for part in parts if part)
    else:
        text = clean_str(data.get("content"), MAX_TEXT)
    return InboundEvent(
        channel=CHANNEL,
        provider_message_id=message_id,
        sender_phone=sender_phone,
        sender_bsuid=sender_bsuid,
        received_at=_when(data.get("receivedTimestamp"), item),
        kind=kind,
        text=text,
        recipient=clean_str(data.get("to"), MAX_ID),
        reply_to=reply_to,
        raw=clean_raw(item),
        **fields,
    )


def _status(item: dict[str, Any]) -> StatusEvent:
    data = _data(item)
    # Status events are about a message we sent: only data.messageId links them to it.
    message_id = _provider_id(data.get("messageId"))
    if not message_id:
        raise SkipItem("status event without messageId")
    status = _STATUSES.get(clean_str(data.get("status"), 40).lower())
    if status is None:
        raise SkipItem(f"unknown status {clean_str(data.get('status'), 40)!r}")
    error = _obj(data.get("error"))
    recipient = clean_str(data.get("to"), 40)
    if recipient:
        try:
            recipient = phone_normalize(recipient)
        except InvalidPhoneNumber:
            recipient = ""
    return StatusEvent(
        channel=CHANNEL,
        provider_message_id=message_id,
        status=status,
        occurred_at=_when(data.get("receivedTimestamp"), item),
        error_code=clean_str(error.get("channelCode"), 40),
        error_message=clean_str(error.get("channelMessage"), 1000),
        recipient=recipient or _bsuid(data.get("toBSUID")),
        raw=clean_raw(item),
    )


def _sender(data: dict[str, Any]) -> tuple[str, str]:
    """(E.164 phone, BSUID). Since 2026 `from` may be empty; then the contact is keyed on `fromBSUID`."""
    bsuid = _bsuid(data.get("fromBSUID"))
    raw_from = clean_str(data.get("from"), 40)
    phone = ""
    if raw_from:
        try:
            phone = phone_normalize(raw_from)
        except InvalidPhoneNumber:
            # A BSUID in `from` (the subject's sender part may be one) is still a usable key.
            bsuid = bsuid or (raw_from if is_bsuid(raw_from) else "")
    if not phone and not bsuid:
        raise SkipItem("no usable sender (from / fromBSUID)")
    return phone, bsuid


def _bsuid(value: Any) -> str:
    text = clean_str(value, MAX_BSUID + 1)
    return text if 0 < len(text) <= MAX_BSUID and text.isprintable() and " " not in text else ""


def _provider_id(value: Any) -> str:
    text = clean_str(value, MAX_ID + 1)
    return text if len(text) <= MAX_ID and text.isprintable() else ""


def _coordinate(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value) if not isinstance(value, str) or len(value) < 40 else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and -limit <= number <= limit else None


def _when(value: Any, item: dict[str, Any]) -> datetime:
    """`receivedTimestamp`, else the envelope's time, else now; implausible values become now."""
    for candidate in (value, item.get("eventTime"), item.get("time")):
        parsed = parse_timestamp(candidate)
        if parsed is not None:
            return parsed
    return datetime.now(UTC)


def parse_timestamp(value: Any) -> datetime | None:
    text = clean_str(value, 64)
    if not text:
        return None
    # Event Grid writes 7 fractional digits; Python reads at most 6.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}" if digits else f"{head}{tail}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    if parsed < EARLIEST_PLAUSIBLE or parsed > datetime.now(UTC) + FUTURE_TOLERANCE:
        return None
    return parsed


# --- hostile-input helpers ----------------------------------------------------------------------------
def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def clean_str(value: Any, limit: int) -> str:
    """A bounded string without NULs; numbers are stringified (channelCode may come as a number)."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        value = str(value) if abs(value) < 10**40 else ""
    elif isinstance(value, float):
        value = repr(value) if math.isfinite(value) else ""
    if not isinstance(value, str):
        return ""
    return value[: limit * 2].replace("\x00", "").strip()[:limit]


def clean_raw(value: Any, depth: int = 0) -> Any:
    """The item as received, minus NUL characters (PostgreSQL's jsonb refuses \\u0000) and absurd nesting."""
    if depth > MAX_RAW_DEPTH:
        return None
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {
            (key.replace("\x00", "") if isinstance(key, str) else str(key)): clean_raw(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [clean_raw(item, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
