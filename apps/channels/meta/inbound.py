"""Reading Meta's webhook body: entries × changes × messages / statuses into InboundEvent / StatusEvent.

Every value is checked for its type before use: the body is signed, but its shape is Meta's to change and a
batch must not be lost to one item that cannot be read.
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import UTC, datetime
from typing import Any

from apps.core.phone import InvalidPhoneNumber, is_bsuid, phone_normalize

from ..base import DeliveryStatus, InboundEvent, MalformedPayload, Media, MessageKind, StatusEvent

logger = logging.getLogger(__name__)

CHANNEL = "meta"
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
# Provider message ids are stored in a 200-character column; a wamid is far shorter.
MAX_ID_LENGTH = 200


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(tz=UTC)


def phone_or_empty(wa_id: Any) -> str:
    if not isinstance(wa_id, str) or not wa_id:
        return ""
    try:
        return phone_normalize(wa_id if wa_id.startswith("+") else "+" + wa_id)
    except InvalidPhoneNumber:
        return ""


def _bsuid_or_empty(value: Any) -> str:
    return value if isinstance(value, str) and is_bsuid(value) else ""


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


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


def events_parse(body: bytes) -> list[InboundEvent | StatusEvent]:
    """Every message and status of a webhook body. Raises MalformedPayload when the body is not a webhook."""
    try:
        # NaN / Infinity are not JSON (and jsonb refuses them).
        payload = _storable(json.loads(body, parse_constant=_refuse_constant))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedPayload("body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("entry", []), list):
        raise MalformedPayload("body is not a WhatsApp webhook object")
    if payload.get("object") not in (None, "whatsapp_business_account"):
        logger.info("meta webhook for object %r ignored", payload.get("object"))
        return []
    events: list[InboundEvent | StatusEvent] = []
    for entry in as_list(payload.get("entry")):
        for change in as_list(as_dict(entry).get("changes")):
            change = as_dict(change)
            if change.get("field", "messages") != "messages":
                logger.info("meta webhook field %r ignored", change.get("field"))
                continue
            events.extend(_value_parse(as_dict(change.get("value"))))
    return events


def _value_parse(value: dict) -> list[InboundEvent | StatusEvent]:
    recipient = as_str(as_dict(value.get("metadata")).get("phone_number_id"))
    names: dict[str, str] = {}
    contacts = [as_dict(c) for c in as_list(value.get("contacts"))]
    for contact in contacts:
        name = as_str(as_dict(contact.get("profile")).get("name"))
        for key in ("wa_id", "user_id"):
            if contact.get(key):
                names[as_str(contact[key])] = name
    events: list[InboundEvent | StatusEvent] = []
    for error in as_list(value.get("errors")):
        error = as_dict(error)
        logger.warning("meta webhook error %s: %s", error.get("code"), error.get("title") or error.get("message"))
    for item in as_list(value.get("messages")):
        try:
            event = _message_parse(as_dict(item), recipient, names, contacts)
        except Exception:  # one unreadable item must not cost the rest of the batch
            logger.exception("meta message skipped (unreadable)")
            continue
        if event is not None:
            events.append(event)
    for item in as_list(value.get("statuses")):
        try:
            status = _status_parse(as_dict(item), recipient)
        except Exception:
            logger.exception("meta status skipped (unreadable)")
            continue
        if status is not None:
            events.append(status)
    return events


def _message_parse(message: dict, recipient: str, names: dict[str, str], contacts: list[dict]) -> InboundEvent | None:
    message_id = as_str(message.get("id"))
    if not message_id or len(message_id) > MAX_ID_LENGTH:
        logger.warning("meta message without a usable id skipped")
        return None
    wa_id = as_str(message.get("from"))
    sender_phone = phone_or_empty(wa_id)
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
        or (as_str(as_dict(contacts[0].get("profile")).get("name")) if len(contacts) == 1 else "")
    )
    message_type = as_str(message.get("type"))
    kind, text, payload, media = MessageKind.UNKNOWN, "", "", None
    latitude = longitude = None
    reply_to = as_str(as_dict(message.get("context")).get("id"))
    body = as_dict(message.get(message_type)) if message_type else {}
    if message_type == "text":
        kind, text = MessageKind.TEXT, as_str(body.get("body"))
    elif message_type in MEDIA_KINDS:
        kind = MEDIA_KINDS[message_type]
        text = as_str(body.get("caption"))
        media = Media(
            mime_type=as_str(body.get("mime_type")),
            provider_id=as_str(body.get("id")),
            file_name=as_str(body.get("filename")),
            caption=text,
        )
    elif message_type == "interactive":
        kind = MessageKind.INTERACTIVE
        reply = as_dict(body.get(as_str(body.get("type"))))  # button_reply / list_reply / nfm_reply
        payload, text = as_str(reply.get("id")), as_str(reply.get("title"))
    elif message_type == "button":
        kind, payload, text = MessageKind.BUTTON, as_str(body.get("payload")), as_str(body.get("text"))
    elif message_type == "location":
        kind = MessageKind.LOCATION
        latitude, longitude = _coordinate(body.get("latitude")), _coordinate(body.get("longitude"))
        text = as_str(body.get("name")) or as_str(body.get("address"))
    elif message_type == "reaction":
        kind, text = MessageKind.REACTION, as_str(body.get("emoji"))
        reply_to = as_str(body.get("message_id")) or reply_to
    else:
        # contacts, order, system, unsupported, …: kept (raw) for the log, answered by the pipeline's default.
        logger.info("meta message %s of type %r has no typed form", message_id, message_type)
    return InboundEvent(
        channel=CHANNEL,
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


def _status_parse(item: dict, recipient: str) -> StatusEvent | None:
    message_id = as_str(item.get("id"))
    status = STATUS_MAP.get(as_str(item.get("status")))
    if not message_id or len(message_id) > MAX_ID_LENGTH or status is None:
        logger.debug("meta status %r for %s ignored", item.get("status"), message_id)
        return None
    errors = [as_dict(e) for e in as_list(item.get("errors"))]
    error = errors[0] if errors else {}
    error_message = (
        as_str(as_dict(error.get("error_data")).get("details"))
        or as_str(error.get("message"))
        or as_str(error.get("title"))
    )
    return StatusEvent(
        channel=CHANNEL,
        provider_message_id=message_id,
        status=status,
        occurred_at=_timestamp(item.get("timestamp")),
        error_code=as_str(error.get("code")) if error else "",
        error_message=error_message,
        recipient=phone_or_empty(as_str(item.get("recipient_id")))
        or as_str(item.get("recipient_user_id"))
        or as_str(item.get("recipient_id")),
        raw=item,
    )
