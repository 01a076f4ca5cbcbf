"""Delivering outbound messages: claim, send, retry transient errors, record permanent ones, never blindly
resend an ambiguous send. One contact at a time, oldest row first."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.channels.base import ChannelError, Media, MessageKind, OutboundMessage, TemplateParameter
from apps.channels.registry import channel_get
from apps.channels.throttle import send_throttle_wait
from apps.core.locks import advisory_lock
from apps.core.phone import mask
from apps.core.transactions import statement_guard

from ..models import Direction, Message, MessageStatus
from .hot_sql import PENDING as _PENDING
from .hot_sql import message_state, outbound_claim, outbound_pending_ids, outbound_sent_update
from .ingest import status_apply, status_record, status_updates_replay

if TYPE_CHECKING:
    from apps.message_templates.models import WhatsAppTemplate

logger = logging.getLogger(__name__)


class DeliveryRetryLater(Exception):
    """A transient failure: the outbound_deliver actor retries after `delay_ms`."""

    def __init__(self, message: str, delay_ms: int):
        super().__init__(message)
        self.delay_ms = delay_ms


@dataclass(frozen=True)
class KnownOutbound:
    """An outbound row this thread has just created and committed, with what sending it needs from its template:
    delivery starts from it instead of reading the row (and the template) back. The claim still checks the
    row's status in the database, so a row that moved on meanwhile is read afresh, never sent twice."""

    message: Message
    template_provider_ref: str = ""
    template_named_parameters: bool = False

    @classmethod
    def of(cls, message: Message, template: WhatsAppTemplate | None = None) -> KnownOutbound:
        if template is None:
            return cls(message)
        return cls(message, template.twilio_content_sid, template.named_parameters)


def _not_before_key(message_id: int) -> str:
    return f"outbound:not_before:{message_id}"


def _backoff_ms(attempts: int, retry_after: float | None) -> int:
    base = settings.OUTBOUND_RETRY_BACKOFF_MS * (2 ** max(0, attempts - 1))
    delay = max(base, int((retry_after or 0) * 1000))
    return int(min(delay, settings.OUTBOUND_RETRY_MAX_BACKOFF_MS))


def _outbound_build(message: Message, known: KnownOutbound | None = None) -> OutboundMessage:
    from apps.message_templates.models import WhatsAppTemplate

    provider_ref, named = "", False
    if known is not None:
        provider_ref, named = known.template_provider_ref, known.template_named_parameters
    elif message.kind == MessageKind.TEMPLATE:
        template = WhatsAppTemplate.objects.filter(
            name=message.template_name, language=message.template_language
        ).first()
        if template is not None:
            provider_ref, named = template.twilio_content_sid, template.named_parameters
    media = None
    if message.media and message.kind != MessageKind.TEMPLATE:
        media = Media(
            mime_type=message.media.get("mime_type", ""),
            url=message.media.get("url", ""),
            file_name=message.media.get("file_name", ""),
            caption=message.media.get("caption", ""),
        )
    return OutboundMessage(
        to=message.contact.address,
        idempotency_key=message.idempotency_key or "",
        kind=MessageKind(message.kind) if message.kind in MessageKind._value2member_map_ else MessageKind.TEXT,
        text=message.text,
        template_name=message.template_name,
        template_language=message.template_language,
        template_parameters=tuple(TemplateParameter(name, value) for name, value in message.template_parameters),
        template_named_parameters=named,
        template_provider_ref=provider_ref,
        media=media,
        outbound_id=message.pk,
        first_queued_at=message.first_attempt_at or timezone.now(),
        contact_id=message.contact_id,
    )


def _finish(message_id: int, **fields) -> None:
    fields["updated_at"] = timezone.now()
    Message.objects.filter(pk=message_id).update(**fields)


def _claim(pending: Message) -> tuple[Message | None, bool]:
    """Claim `pending` for sending → (row, is_resend_of_abandoned_send), or (None, False) when taken.

    One conditional UPDATE, committed on its own: it matches only while the row is still in the status and
    attempt count read just before, so of two workers holding the same snapshot exactly one claims it.
    """
    now = timezone.now()
    attempts = pending.attempts + 1
    first_attempt_at = pending.first_attempt_at or now
    claimed = outbound_claim(
        pk=pending.pk, status=pending.status, attempts=pending.attempts, first_attempt_at=first_attempt_at, now=now
    )
    if not claimed:
        return None, False
    abandoned = pending.status == MessageStatus.SENDING
    pending.status, pending.attempts, pending.first_attempt_at = MessageStatus.SENDING, attempts, first_attempt_at
    return pending, abandoned


def _sent_record(message: Message, provider_message_id: str | None) -> None:
    """Record an accepted send: provider id and SENT in one UPDATE, then the receipts that came first."""
    now = timezone.now()
    sent = {"status": MessageStatus.SENT, "sent_at": now, "error_code": "", "error_message": "", "updated_at": now}
    try:
        with statement_guard():
            updated, early = outbound_sent_update(message, provider_message_id, now)
    except IntegrityError:
        logger.error("provider id %s already recorded on another message", provider_message_id)
        provider_message_id = None
        updated = bool(Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(**sent))
        early = False
    if updated and not early:
        return  # the common case: one statement on PostgreSQL
    # The row moved on while we sent (an operator marked it), or receipts arrived before the send returned:
    # apply everything under the row lock, in status order (statuses only move forward).
    with transaction.atomic():
        locked = Message.objects.select_for_update(no_key=True).get(pk=message.pk)
        if provider_message_id and locked.provider_message_id != provider_message_id:
            Message.objects.filter(pk=locked.pk).update(provider_message_id=provider_message_id, updated_at=now)
            locked.provider_message_id = provider_message_id
        status_apply(message=locked, status=MessageStatus.SENT, occurred_at=now)
        status_updates_replay(message=locked)


def _deliver_one(message_id: int, known: KnownOutbound | None = None) -> int | None:
    """Send one claimed row. Returns a retry delay in ms when it must be retried later, else None."""
    pending: Message | None
    if known is not None:
        pending = known.message
    else:
        pending = (
            Message.objects.filter(pk=message_id, status__in=_PENDING)
            .select_related("contact")
            .defer("raw_payload")
            .first()
        )
        if pending is None:
            return None
    # Only a row whose earlier attempt failed transiently can have a not-before time (_delivery_failed).
    not_before = cache.get(_not_before_key(message_id)) if pending.attempts else None
    if not_before and not_before > time.time():
        return int((not_before - time.time()) * 1000) + 1
    # Pace before claiming: a row waiting for a send slot stays queued (a crash now loses nothing), and a
    # long wait goes back to the broker instead of holding this worker and the contact's lock.
    wait = send_throttle_wait(channel=pending.channel, sender=pending.channel, recipient=pending.contact.address)
    if wait > 1.0:
        return int(wait * 1000)
    if wait > 0:
        time.sleep(wait)  # under a second: cheaper than a round trip through the broker
    message, abandoned = _claim(pending)
    if message is None:
        # The row moved on since this thread created it (another worker took it): decide on a fresh read.
        return _deliver_one(message_id) if known is not None else None
    try:
        channel = channel_get(message.channel)
    except KeyError:
        _finish(
            message.pk,
            status=MessageStatus.FAILED,
            failed_at=timezone.now(),
            error_code="unknown_channel",
            error_message=f"no channel named {message.channel!r}",
        )
        return None
    if abandoned and not channel.idempotent_send:
        # A worker died between claiming and recording: the provider may or may not have it. Resending could
        # deliver it twice, so it is marked unknown for a person (or a status callback) to settle.
        _finish(
            message.pk,
            status=MessageStatus.UNKNOWN,
            error_code="abandoned",
            error_message="the worker stopped during the send; not resent (channel is not idempotent)",
        )
        return None
    if not channel.enabled():
        _finish(
            message.pk,
            status=MessageStatus.FAILED,
            failed_at=timezone.now(),
            error_code="channel_disabled",
            error_message=f"channel {message.channel} is not enabled",
        )
        return None

    outbound = _outbound_build(message, known)
    try:
        result = channel.send(outbound)
    except ChannelError as exc:
        return _delivery_failed(message, channel.idempotent_send, exc)
    except Exception as exc:
        # An adapter bug or an unmapped network error: treat as ambiguous, the request may have left.
        logger.exception("unexpected error sending outbound %s", message.pk)
        error = ChannelError(f"{type(exc).__name__}: {exc}"[:500], "unexpected", ambiguous=True)
        return _delivery_failed(message, channel.idempotent_send, error)

    _sent_record(message, result.provider_message_id or None)
    if not_before:
        cache.delete(_not_before_key(message.pk))
    logger.info("outbound %s sent on %s to %s", message.pk, message.channel, mask(outbound.to))
    for event in getattr(channel, "receipts_after_send", lambda _r: [])(result):
        status_record(event=event)
    return None


# Errors after which the provider may have accepted the request.
_AMBIGUOUS_CODES = frozenset({"timeout", "connection_error", "unexpected", "ambiguous"})


def _delivery_failed(message: Message, idempotent: bool, exc: ChannelError) -> int | None:
    now = timezone.now()
    if exc.code == "repeatability_expired":
        # ACS forgot the repeatability id (more than 5 minutes of retries). When every earlier attempt was
        # refused outright, nothing reached the user: start a fresh run with a new first-sent time. After an
        # ambiguous attempt a resend could deliver twice, so it is marked unknown instead.
        if message.error_code not in _AMBIGUOUS_CODES:
            _finish(message.pk, status=MessageStatus.QUEUED, first_attempt_at=None, error_code=exc.code)
            return settings.OUTBOUND_RETRY_BACKOFF_MS
        _finish(
            message.pk,
            status=MessageStatus.UNKNOWN,
            error_code=exc.code,
            error_message=f"ambiguous earlier attempt and the repeatability window expired: {exc.message}",
        )
        return None
    if exc.permanent:
        with transaction.atomic():
            locked = Message.objects.select_for_update(no_key=True).get(pk=message.pk)
            status_apply(
                message=locked,
                status=MessageStatus.FAILED,
                occurred_at=now,
                error_code=exc.code or "error",
                error_message=exc.message,
            )
        logger.warning("outbound %s failed permanently: %s", message.pk, exc)
        return None
    if exc.ambiguous and not idempotent:
        _finish(
            message.pk,
            status=MessageStatus.UNKNOWN,
            error_code=exc.code or "ambiguous",
            error_message=f"ambiguous send, not resent: {exc.message}",
        )
        logger.warning("outbound %s ambiguous, marked unknown: %s", message.pk, exc)
        return None
    if message.attempts > settings.OUTBOUND_MAX_RETRIES:
        _finish(
            message.pk,
            status=MessageStatus.FAILED,
            failed_at=now,
            error_code=exc.code or "retries_exhausted",
            error_message=f"gave up after {message.attempts} attempts: {exc.message}",
        )
        logger.warning("outbound %s failed after %s attempts: %s", message.pk, message.attempts, exc)
        return None
    delay_ms = _backoff_ms(message.attempts, exc.retry_after)
    _finish(message.pk, status=MessageStatus.QUEUED, error_code=exc.code, error_message=exc.message)
    cache.set(_not_before_key(message.pk), time.time() + delay_ms / 1000, timeout=int(delay_ms / 1000) + 60)
    logger.info("outbound %s: transient %s, retry in %s ms", message.pk, exc, delay_ms)
    return delay_ms


def outbound_deliver(*, message_id: int, known: KnownOutbound | None = None) -> None:
    """Deliver the contact's queued outbound rows, oldest first, one contact at a time across workers.

    `known` is the row `message_id` as its creator holds it (inline delivery): it is not read back.
    Raises DeliveryRetryLater(delay_ms) when the oldest pending row failed transiently (later rows wait
    behind it, keeping order). Permanent failures and ambiguous sends are recorded on the row, not raised.
    """
    if known is not None and known.message.pk == message_id:
        contact_id = known.message.contact_id
    else:
        known = None
        state = message_state(message_id, Direction.OUTBOUND)
        if state is None or state[1] not in _PENDING:
            return
        contact_id = state[0]
    with advisory_lock("outbound", contact_id):
        for pk in outbound_pending_ids(contact_id):
            delay_ms = _deliver_one(pk, known if known is not None and pk == known.message.pk else None)
            if delay_ms is not None:
                raise DeliveryRetryLater(f"outbound {pk} will be retried", delay_ms)
