"""Enqueueing actors after commit. A broker outage never loses work: the row is committed, the sweeper
re-enqueues it, so a failed enqueue is logged and swallowed.

Inside the worker's inbound and AI actors (`deliveries_inline()`), a reply is not sent to the broker at all:
the same thread delivers it right after the commit, which spares a broker round trip, a second task and the
wait in the outbound queue (P2 measured the queue, not the send, as the latency). A delivery that must wait
(throttle, transient error) or fails unexpectedly goes to the outbound actor as before, so retries, backoff
and the sweeper's safety net are unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from apps.message_templates.models import WhatsAppTemplate

    from ..models import Message
    from .delivery import KnownOutbound

logger = logging.getLogger(__name__)

_inline_deliveries = contextvars.ContextVar("relay_inline_deliveries", default=False)
_inline_inbound = contextvars.ContextVar("relay_inline_inbound", default=False)


@contextlib.contextmanager
def deliveries_inline() -> Iterator[None]:
    """Within this block, replies queued by outbound_*_create are delivered by this thread after commit."""
    token = _inline_deliveries.set(True)
    try:
        yield
    finally:
        _inline_deliveries.reset(token)


@contextlib.contextmanager
def inbound_inline() -> Iterator[None]:
    """Within this block, inbound messages stored by events_ingest are processed by this thread after commit.

    The worker's step for deferred webhook deliveries uses it: the message it has just stored is processed in
    the same task instead of a second one (a broker round trip, a task and a queue wait less per message).
    """
    token = _inline_inbound.set(True)
    try:
        yield
    finally:
        _inline_inbound.reset(token)


def _send(actor_name: str, message_id: int, *, delay_ms: int | None = None) -> bool:
    from .. import tasks

    actor = getattr(tasks, actor_name)
    try:
        if delay_ms:
            actor.send_with_options(args=(message_id,), delay=delay_ms)
        else:
            actor.send(message_id)
        return True
    except Exception:
        # Broker down: the row stays received / queued and the sweeper picks it up.
        logger.exception("could not enqueue %s(%s); the sweeper will retry it", actor_name, message_id)
        return False


def _deliver_inline(message_id: int, known: KnownOutbound | None = None) -> None:
    from .delivery import DeliveryRetryLater, outbound_deliver

    try:
        outbound_deliver(message_id=message_id, known=known)
    except DeliveryRetryLater as exc:
        _send("outbound_deliver_task", message_id, delay_ms=exc.delay_ms)
    except Exception:
        logger.exception("inline delivery of outbound %s failed; handing it to the outbound actor", message_id)
        _send("outbound_deliver_task", message_id)


def _process_inline(message_id: int) -> None:
    from .pipeline import inbound_process

    try:
        with deliveries_inline():
            inbound_process(message_id=message_id)
    except Exception:
        # The message is committed: the inbound actor retries it (and the sweeper is behind that).
        logger.exception("inline processing of inbound %s failed; handing it to the inbound actor", message_id)
        _send("inbound_process_task", message_id)


def enqueue_on_commit(actor_name: str, message_id: int) -> None:
    """Enqueue `tasks.<actor_name>(message_id)` once the current transaction commits (now, outside one)."""
    if actor_name == "outbound_deliver_task" and _inline_deliveries.get():
        transaction.on_commit(lambda: _deliver_inline(message_id))
        return
    if actor_name == "inbound_process_task" and _inline_inbound.get():
        transaction.on_commit(lambda: _process_inline(message_id))
        return
    transaction.on_commit(lambda: _send(actor_name, message_id))


def delivery_on_commit(message: Message, *, template: WhatsAppTemplate | None = None) -> None:
    """Deliver the new outbound row `message` once the transaction commits.

    Inline (within deliveries_inline()), the row and its template are handed to delivery as they are in hand,
    so it does not read them back (two full-row queries, 11 % of the worker's CPU per answered message in the
    P2 profile). Elsewhere the outbound actor gets the id.
    """
    if not _inline_deliveries.get():
        enqueue_on_commit("outbound_deliver_task", message.pk)
        return
    from .delivery import KnownOutbound

    known = KnownOutbound.of(message, template)
    transaction.on_commit(lambda: _deliver_inline(message.pk, known))


def enqueue_now(actor_name: str, message_id: int, *, delay_ms: int | None = None) -> bool:
    return _send(actor_name, message_id, delay_ms=delay_ms)
