"""Enqueueing actors after commit. A broker outage never loses work: the row is committed, the sweeper
re-enqueues it, so a failed enqueue is logged and swallowed."""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


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


def enqueue_on_commit(actor_name: str, message_id: int) -> None:
    """Enqueue `tasks.<actor_name>(message_id)` once the current transaction commits (now, outside one)."""
    transaction.on_commit(lambda: _send(actor_name, message_id))


def enqueue_now(actor_name: str, message_id: int, *, delay_ms: int | None = None) -> bool:
    return _send(actor_name, message_id, delay_ms=delay_ms)
