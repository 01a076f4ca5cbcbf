"""Recording what providers tell us: inbound messages, delivery statuses, and the webhook log."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.channels.base import (
    MARKETING_OPT_OUT_CODES,
    WINDOW_CLOSED_CODES,
    InboundEvent,
    StatusEvent,
)

from ..models import Contact, Direction, Interaction, Message, MessageStatus, StatusUpdate, WebhookLog
from .clean import db_json, db_text
from .contacts import contact_resolve, phone_or_empty
from .deferred import deliveries_waiting, delivery_decode, delivery_defer, delivery_delete
from .enqueue import enqueue_on_commit
from .ingest_sql import inbound_store_one_statement

logger = logging.getLogger(__name__)

# Outbound statuses move only up this ladder; FAILED is terminal and reachable from any non-terminal status.
STATUS_RANK: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.UNKNOWN: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.READ: 5,
}
TERMINAL_STATUSES = {MessageStatus.FAILED, MessageStatus.READ}
_TIMESTAMP_FIELD = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.FAILED: "failed_at",
}


def _media_dict(event: InboundEvent) -> dict:
    if event.media is None:
        return {}
    media = event.media
    return {
        "mime_type": media.mime_type,
        "provider_id": media.provider_id,
        "url": media.url,
        "file_name": media.file_name,
        "caption": media.caption,
    }


def inbound_fields(event: InboundEvent) -> tuple[dict, dict]:
    """What `event` stores: (contact_resolve keywords, Message fields except the contact).

    One mapping for both ways of storing an inbound message (inbound_record and ingest_sql).
    """
    contact = {
        "channel": event.channel,
        "phone": db_text(event.sender_phone),
        "bsuid": db_text(event.sender_bsuid),
        "profile_name": db_text(event.profile_name),
    }
    now = timezone.now()
    location = {}
    if event.latitude is not None and event.longitude is not None:
        location = {"latitude": event.latitude, "longitude": event.longitude}
    text = event.text
    if not text and event.media is not None and event.media.caption:
        text = event.media.caption
    message = {
        "direction": Direction.INBOUND,
        "channel": event.channel,
        "provider_message_id": db_text(event.provider_message_id),
        "kind": str(event.kind),
        "text": db_text(text),
        "payload": db_text(event.payload or "")[:500],
        "media": db_json({**_media_dict(event), **({"location": location} if location else {})}),
        "status": MessageStatus.RECEIVED,
        "raw_payload": db_json(event.raw or {}),
        # Never in the future: a provider clock ahead of ours must not stretch the 24-hour window.
        "received_at": min(event.received_at or now, now),
    }
    return contact, message


def inbound_record(*, event: InboundEvent) -> Message | None:
    """INSERT the inbound message (status received) and enqueue its processing on commit.

    Returns None for a duplicate delivery: (channel, provider_message_id) is unique, so the same event arriving
    any number of times, concurrently or a day later, yields exactly one row and one processing. Updates the
    contact's last_inbound_at (the later of the stored and the event time, never in the future), profile
    name and channel. Raises ValueError, before writing anything, when the sender has neither a usable phone
    number nor a BSUID.
    """
    contact_keywords, fields = inbound_fields(event)
    if not phone_or_empty(contact_keywords["phone"]) and not (contact_keywords["bsuid"] or "").strip():
        # Raised here, outside the transaction below: an exception inside a savepoint-less block would leave
        # the caller's transaction (the rest of the delivery and its WebhookLog row) unusable.
        raise ValueError("a contact needs a phone number or a BSUID")
    return _inbound_insert(event, contact_keywords, fields)


# savepoint=False: inside events_ingest's transaction a savepoint would cost two round trips per item on the
# webhook's hot path; an error still rolls the whole delivery back (and the provider retries it).
@transaction.atomic(savepoint=False)
def _inbound_insert(event: InboundEvent, contact_keywords: dict, fields: dict) -> Message | None:
    contact = contact_resolve(**contact_keywords)
    received_at = fields["received_at"]
    try:
        with transaction.atomic():
            message = Message.objects.create(contact=contact, **fields)
    except IntegrityError:
        logger.info("duplicate %s delivery of %s ignored", event.channel, event.provider_message_id)
        return None
    Contact.objects.filter(pk=contact.pk).filter(
        Q(last_inbound_at__isnull=True) | Q(last_inbound_at__lt=received_at)
    ).update(last_inbound_at=received_at)
    enqueue_on_commit("inbound_process_task", message.pk)
    return message


def _window_closed_note(message: Message, code: str) -> None:
    note = (
        f"the 24-hour customer service window is closed (provider code {code}); "
        f"free-form messages are not resent, send the template {settings.FALLBACK_TEMPLATE_NAME!r} instead"
    )
    Message.objects.filter(pk=message.pk).update(error_message=note, updated_at=timezone.now())
    query = Q(reply_id=message.pk)
    if message.in_reply_to_id is not None:
        query |= Q(message_id=message.in_reply_to_id)
    for interaction in Interaction.objects.filter(query):
        interaction.success = False
        interaction.error = note
        interaction.context = {**interaction.context, "window_closed": True}
        interaction.save(update_fields=["success", "error", "context", "updated_at"])


def status_apply(
    *, message: Message, status: str, occurred_at: datetime, error_code: str = "", error_message: str = ""
) -> bool:
    """Move `message` forward to `status` if that is forward; record its timestamp either way.

    Must run inside a transaction holding the row (select_for_update). Returns True when the status changed.
    """
    status = MessageStatus(status)
    fields: dict[str, object] = {}
    stamp = _TIMESTAMP_FIELD.get(status)
    if stamp and getattr(message, stamp) is None:
        fields[stamp] = occurred_at
    current = MessageStatus(message.status)
    changed = False
    if status == MessageStatus.FAILED:
        if current not in TERMINAL_STATUSES:
            fields.update(status=status, error_code=error_code[:40], error_message=error_message)
            changed = True
    elif current not in TERMINAL_STATUSES and STATUS_RANK.get(status, -1) > STATUS_RANK.get(current, -1):
        fields["status"] = status
        changed = True
    if fields:
        fields["updated_at"] = timezone.now()
        Message.objects.filter(pk=message.pk).update(**fields)
        for name, value in fields.items():
            setattr(message, name, value)
    if changed and status == MessageStatus.FAILED:
        if error_code in WINDOW_CLOSED_CODES:
            _window_closed_note(message, error_code)
        if error_code in MARKETING_OPT_OUT_CODES:
            now = timezone.now()
            Contact.objects.filter(pk=message.contact_id, marketing_opted_out_at__isnull=True).update(
                marketing_opted_out_at=now, updated_at=now
            )
    return changed


def status_updates_replay(*, message: Message) -> int:
    """Apply the status events that arrived before `message` knew its provider id. Returns how many.

    Must run inside a transaction holding the row.
    """
    if not message.provider_message_id:
        return 0
    updates = list(
        StatusUpdate.objects.filter(channel=message.channel, provider_message_id=message.provider_message_id)
    )
    updates.sort(key=lambda u: (u.status == MessageStatus.FAILED, STATUS_RANK.get(u.status, 0), u.occurred_at))
    for update in updates:
        status_apply(
            message=message,
            status=update.status,
            occurred_at=update.occurred_at,
            error_code=update.error_code,
            error_message=update.error_message,
        )
    StatusUpdate.objects.filter(pk__in=[u.pk for u in updates if u.message_id is None]).update(message=message)
    return len(updates)


@transaction.atomic(savepoint=False)
def status_record(*, event: StatusEvent) -> None:
    """Store the provider's status event (once per channel / id / status) and apply it monotonically.

    An event for a message we do not know (yet) is kept and replayed when the outbound row records that
    provider id, so an early receipt is not lost. Statuses never move backwards, whatever the arrival order.
    """
    try:
        with transaction.atomic():
            update = StatusUpdate.objects.create(
                channel=event.channel,
                provider_message_id=db_text(event.provider_message_id),
                status=str(event.status),
                occurred_at=event.occurred_at or timezone.now(),
                error_code=db_text(event.error_code or "")[:40],
                error_message=db_text(event.error_message or ""),
                raw_payload=db_json(event.raw or {}),
            )
    except IntegrityError:
        logger.info("duplicate status %s for %s ignored", event.status, event.provider_message_id)
        return
    message = (
        Message.objects.select_for_update(no_key=True)
        .filter(channel=event.channel, provider_message_id=update.provider_message_id, direction=Direction.OUTBOUND)
        .first()
    )
    if message is None:
        return
    StatusUpdate.objects.filter(pk=update.pk).update(message=message)
    status_apply(
        message=message,
        status=update.status,
        occurred_at=update.occurred_at,
        error_code=update.error_code,
        error_message=update.error_message,
    )


# --- webhooks -------------------------------------------------------------------------------------------

_REDACTED_HEADER_WORDS = ("authorization", "signature", "cookie", "token", "secret", "key", "code")


def headers_redact(headers: dict[str, str]) -> dict[str, str]:
    """Request headers safe to store: credentials and signatures replaced by "[redacted]"."""
    return {
        name: "[redacted]" if any(word in name.lower() for word in _REDACTED_HEADER_WORDS) else value
        for name, value in headers.items()
    }


@dataclass(frozen=True)
class IngestResult:
    messages: list[Message]
    duplicates: int
    statuses: int
    skipped: int = 0
    # Stored for the worker (defer=True): whether they are new or duplicates is known once it has stored them.
    deferred: int = 0


def events_ingest(
    *,
    channel: str,
    events: list[InboundEvent | StatusEvent],
    log: dict | None = None,
    defer: bool = False,
) -> IngestResult:
    """Persist every item of one delivery in ONE transaction, plus its WebhookLog row when `log` is given.

    `log` holds WebhookLog fields (method, path, headers — redacted here —, body, status_code, duration_ms).
    Processing is enqueued on commit. Raises the database's OperationalError when it is unavailable: the
    caller must then answer non-2xx so that the provider retries.

    A delivery of one inbound message (nearly every webhook call) is stored by a single SQL statement on
    PostgreSQL (ingest_sql); the ORM path below is the general case and the reference semantics. With `defer`
    (the webhooks, settings.WEBHOOK_DEFERRED_INGEST) such a delivery is only stored for the worker, which makes it
    a contact, a message and a WebhookLog row (deferred.py, inbound_deliveries_materialize).
    """
    single = events[0] if len(events) == 1 else None
    if isinstance(single, InboundEvent):
        if (
            defer
            and log is not None
            and delivery_defer(event=single, log={**log, "headers": headers_redact(log["headers"])})
        ):
            return IngestResult(messages=[], duplicates=0, statuses=0, deferred=1)
        log_fields = None if log is None else webhook_log_fields(channel=channel, events=1, **log)
        contact_keywords, fields = inbound_fields(single)
        stored = inbound_store_one_statement(contact_keywords=contact_keywords, fields=fields, log=log_fields)
        if stored is not None:
            if stored.message is None:
                logger.info("duplicate %s delivery of %s ignored", channel, single.provider_message_id)
                return IngestResult(messages=[], duplicates=1, statuses=0)
            return IngestResult(messages=[stored.message], duplicates=0, statuses=0)
    return _events_ingest_orm(channel=channel, events=events, log=log)


@transaction.atomic
def _events_ingest_orm(
    *,
    channel: str,
    events: list[InboundEvent | StatusEvent],
    log: dict | None,
) -> IngestResult:
    messages: list[Message] = []
    duplicates = statuses = skipped = 0
    for event in events:
        if isinstance(event, InboundEvent):
            try:
                message = inbound_record(event=event)
            except ValueError as exc:
                # No usable sender (neither a phone number nor a BSUID): skip this item, keep the others.
                logger.warning("skipped %s item %s: %s", channel, event.provider_message_id, exc)
                skipped += 1
                continue
            if message is None:
                duplicates += 1
            else:
                messages.append(message)
        elif isinstance(event, StatusEvent):
            status_record(event=event)
            statuses += 1
    if log is not None:
        webhook_log_write(channel=channel, events=len(events), **log)
    return IngestResult(messages=messages, duplicates=duplicates, statuses=statuses, skipped=skipped)


def inbound_deliveries_materialize(*, delivery_id: int) -> int:
    """Store delivery `delivery_id` and its sender's earlier ones (oldest first) as contact, message and WebhookLog
    rows, the webhook's direct path, each deleted as it is stored; each message's processing follows its commit
    (enqueued, or in this thread within enqueue.inbound_inline, as the worker's task does). Returns how many this
    call stored.

    Taking the sender's earlier deliveries too keeps arrival order when tasks run out of order. Each delivery is
    stored and deleted by one statement (ingest_sql's `take`), so a task that meets one another task is storing
    waits for that commit, then finds it gone and stores nothing; the next of its list comes after it either way.
    """
    stored = 0
    for pk, channel, text in deliveries_waiting(delivery_id):
        try:
            event, log = delivery_decode(text)
        except (ValueError, KeyError, TypeError) as exc:
            # Retrying cannot help, and it must not hold the sender's later deliveries: logged as it was stored.
            stored += _delivery_unreadable(delivery_id=pk, channel=channel, text=text, error=exc)
            continue
        stored += _delivery_store(delivery_id=pk, channel=channel, event=event, log=log)
    return stored


def _delivery_unreadable(*, delivery_id: int, channel: str, text: str, error: Exception) -> bool:
    """Move a waiting delivery this release cannot read to the WebhookLog (its stored text as the body, the
    error beside it), where an operator can find and replay it, and delete it."""
    logger.error("waiting delivery %s (%s) is unreadable, moved to the webhook log: %r", delivery_id, channel, error)
    with transaction.atomic():
        if not delivery_delete(delivery_id):
            return False
        webhook_log_write(
            channel=channel,
            method="POST",
            path="",
            headers={},
            body=text,
            status_code=200,  # what the provider was answered
            events=1,
            error=f"stored delivery unreadable ({type(error).__name__}: {error})",
        )
    return True


def _delivery_store(*, delivery_id: int, channel: str, event: InboundEvent, log: dict) -> bool:
    contact_keywords, fields = inbound_fields(event)
    log_fields = webhook_log_fields(channel=channel, events=1, **log)
    result = inbound_store_one_statement(
        contact_keywords=contact_keywords, fields=fields, log=log_fields, take=delivery_id
    )
    if result is not None:
        if result.taken and result.message is None:
            logger.info("duplicate %s delivery of %s ignored", channel, event.provider_message_id)
        return result.taken
    # The general way (a contact to link, no usable sender): the delivery's deletion in the same transaction.
    with transaction.atomic():
        if not delivery_delete(delivery_id):
            return False
        _events_ingest_orm(channel=channel, events=[event], log=log)
    return True


def webhook_log_fields(
    *,
    channel: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str,
    status_code: int,
    duration_ms: int = 0,
    events: int = 0,
    error: str = "",
) -> dict:
    """The WebhookLog row for a request: credentials redacted, text made storable and cut to the columns."""
    return {
        "channel": channel,
        "method": db_text(method)[:10],
        "path": db_text(path)[:500],
        "headers": db_json(headers_redact(headers)),
        "body": db_text(body),
        "status_code": status_code,
        "duration_ms": duration_ms,
        "events": events,
        "error": db_text(error)[:2000],
    }


def webhook_log_write(**fields) -> WebhookLog:
    """INSERT a WebhookLog row; takes webhook_log_fields' keywords."""
    return WebhookLog.objects.create(**webhook_log_fields(**fields))
