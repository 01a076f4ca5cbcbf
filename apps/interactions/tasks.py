"""Dramatiq actors of the pipeline: thin, take ids, call services. Enqueued on commit by the services."""

from __future__ import annotations

import dramatiq
from django.conf import settings

from .exceptions import AIRetryLater
from .services import (
    ai_reply_abandon,
    ai_reply_process,
    inbound_deliveries_materialize,
    inbound_process,
    outbound_deliver,
)
from .services.delivery import DeliveryRetryLater
from .services.enqueue import deliveries_inline, inbound_inline


@dramatiq.actor(
    queue_name="default", max_retries=settings.INBOUND_MAX_RETRIES, min_backoff=settings.TASK_MIN_BACKOFF_MS
)
def inbound_process_task(message_id: int) -> None:
    # Errors in one message are recorded by the service; what reaches here is infrastructure (database down).
    with deliveries_inline():
        inbound_process(message_id=message_id)


@dramatiq.actor(
    queue_name="default", max_retries=settings.INBOUND_MAX_RETRIES, min_backoff=settings.TASK_MIN_BACKOFF_MS
)
def inbound_deliveries_materialize_task(delivery_id: int) -> None:
    # A webhook's deferred delivery becomes its contact and message rows, then is processed in this same task.
    with inbound_inline():
        inbound_deliveries_materialize(delivery_id=delivery_id)


@dramatiq.actor(
    queue_name="outbound",
    # Transient send failures are counted on the row (OUTBOUND_MAX_RETRIES); the actor limit is a backstop.
    max_retries=settings.OUTBOUND_MAX_RETRIES + 2,
    min_backoff=settings.TASK_MIN_BACKOFF_MS,
)
def outbound_deliver_task(message_id: int) -> None:
    try:
        outbound_deliver(message_id=message_id)
    except DeliveryRetryLater as exc:
        raise dramatiq.Retry(str(exc), delay=exc.delay_ms) from exc


@dramatiq.actor(
    queue_name="ai",
    time_limit=settings.AI_TIME_LIMIT_MS,
    max_retries=settings.AI_MAX_RETRIES,
    max_age=settings.AI_MAX_AGE_MS,
    min_backoff=settings.TASK_MIN_BACKOFF_MS,
    # The last retry failed too (provider down, time limit, …): the contact gets an apology, not silence. A task
    # dropped by max_age gets no callback; the sweeper answers those (maintenance.sweeper_run).
    on_retry_exhausted="ai_answer_exhausted_task",
)
def ai_answer_task(message_id: int) -> None:
    try:
        with deliveries_inline():
            ai_reply_process(message_id=message_id)
    except AIRetryLater as exc:
        delay = int(exc.retry_after * 1000) if exc.retry_after else None
        raise dramatiq.Retry(str(exc), delay=delay) from exc


@dramatiq.actor(
    queue_name="default", max_retries=settings.INBOUND_MAX_RETRIES, min_backoff=settings.TASK_MIN_BACKOFF_MS
)
def ai_answer_exhausted_task(message_data: dict, retry_info: dict) -> None:
    """Dramatiq's on_retry_exhausted callback of ai_answer_task: (the failed message, its retry counts)."""
    [message_id] = message_data["args"]
    with deliveries_inline():
        ai_reply_abandon(
            message_id=message_id,
            reason=f"AI answer failed {retry_info.get('retries', 0) + 1} times; gave up",
        )
