"""Reading Twilio's form-encoded webhooks (inbound messages and status callbacks) into InboundEvent /
StatusEvent."""

from __future__ import annotations

import contextlib
import logging
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apps.core.phone import InvalidPhoneNumber, is_bsuid, mask, phone_normalize

from ..base import DeliveryStatus, InboundEvent, MalformedPayload, Media, MessageKind, StatusEvent

if TYPE_CHECKING:
    from django.http import QueryDict

logger = logging.getLogger(__name__)

CHANNEL = "twilio"
# Twilio SIDs are two letters and 32 hex digits; allow some slack, never what a database column cannot hold.
_SID = re.compile(r"[A-Za-z]{2}[0-9A-Za-z]{1,62}")

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


def strip_prefix(value: str) -> str:
    value = (value or "").strip()
    return value[len("whatsapp:") :] if value.lower().startswith("whatsapp:") else value


def _address(value: str) -> str:
    """`whatsapp:+15551234567` → E.164; `whatsapp:US.123…` → the BSUID. Raises MalformedPayload otherwise."""
    bare = strip_prefix(value)
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


def _kind_for_mime(mime: str) -> MessageKind:
    major = (mime or "").split("/", 1)[0].lower()
    if mime == "image/webp":
        return MessageKind.STICKER
    return {"image": MessageKind.IMAGE, "audio": MessageKind.AUDIO, "video": MessageKind.VIDEO}.get(
        major, MessageKind.DOCUMENT
    )


def form_parse(post: QueryDict, path: str) -> list[InboundEvent | StatusEvent]:
    """The event of one webhook form (Django's parsed POST). Raises MalformedPayload when it is not one."""
    # NUL characters cannot be stored in PostgreSQL text or jsonb; they carry nothing a user could mean.
    form = {_no_nul(key): _no_nul(post.get(key, "")) for key in post}
    raw: dict[str, Any] = {}
    for key, values in post.lists():
        cleaned = [_no_nul(v) for v in values]
        raw[_no_nul(key)] = cleaned[0] if len(cleaned) == 1 else cleaned
    message_sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not message_sid:
        raise MalformedPayload("MessageSid is missing")
    if not _SID.fullmatch(message_sid):
        raise MalformedPayload("MessageSid is not a Twilio SID")
    if "MessageStatus" in form or path.rstrip("/").endswith("/status"):
        status = _status_parse(form, message_sid, raw)
        return [status] if status else []
    return [_message_parse(form, message_sid, raw)]


def _status_parse(form: dict[str, str], message_sid: str, raw: dict) -> StatusEvent | None:
    value = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    status = STATUS_MAP.get(value)
    if status is None:
        logger.debug("twilio status %s for %s ignored", value, message_sid)
        return None
    recipient = strip_prefix(form.get("To", ""))
    return StatusEvent(
        channel=CHANNEL,
        provider_message_id=message_sid,
        status=status,
        occurred_at=datetime.now(tz=UTC),
        error_code=form.get("ErrorCode", "") or "",
        error_message=form.get("ErrorMessage", "") or ("canceled" if value == "canceled" else ""),
        recipient=recipient,
        raw=raw,
    )


def _message_parse(form: dict[str, str], message_sid: str, raw: dict) -> InboundEvent:
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
    recipient = strip_prefix(form.get("To", ""))
    return InboundEvent(
        channel=CHANNEL,
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
