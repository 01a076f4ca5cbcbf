"""Housekeeping: the sweeper (re-enqueue work a broker outage or a crashed worker left behind) and the
raw-payload purge."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import Direction, Message, MessageStatus, StatusUpdate, WebhookLog
from .ai import ai_reply_abandon
from .deferred import deliveries_latest
from .enqueue import enqueue_now
from .pipeline import ai_waiting_interactions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    inbound: int
    outbound: int
    failed_enqueues: int = 0
    ai_given_up: int = 0
    deliveries: int = 0  # senders whose deferred webhook deliveries were re-enqueued


# How far back the sweeper looks for AI answers that never came. Older ones are left alone: an apology a day
# late helps nobody (and their Interaction already says no answer was sent).
AI_GIVE_UP_LOOKBACK = timedelta(days=1)


def ai_answers_give_up(*, older_than_seconds: int) -> int:
    """Answer, with the apology, messages whose AI answer can no longer come: older than the AI task's maximum
    age plus its time limit (no attempt can start or still run), and `older_than_seconds` more. Their task was
    dropped by AgeLimit or lost with the broker's data. Returns how many were answered."""
    give_up = timedelta(milliseconds=settings.AI_MAX_AGE_MS + settings.AI_TIME_LIMIT_MS, seconds=older_than_seconds)
    cutoff = timezone.now() - give_up
    waiting = (
        ai_waiting_interactions()
        .filter(created_at__lte=cutoff, created_at__gt=cutoff - AI_GIVE_UP_LOOKBACK)
        .values_list("message_id", flat=True)
    )
    reason = f"no AI answer within AI_MAX_AGE_MS ({settings.AI_MAX_AGE_MS} ms): the task was dropped or lost"
    return sum(ai_reply_abandon(message_id=message_id, reason=reason) for message_id in list(waiting))


def sweeper_run(*, older_than_seconds: int) -> SweepReport:
    """Re-enqueue deferred webhook deliveries not yet stored as messages, inbound rows still `received`, and
    outbound rows still `queued` / `sending`, untouched for longer than `older_than_seconds`; then give up on AI
    answers that can no longer come (ai_answers_give_up). Safe to run any time: the actors claim rows, so extra
    tasks do nothing.

    One task per contact (per sender for deliveries) is enough: a task handles all of its contact's pending rows
    (a delivery's task, all of its sender's earlier deliveries), so that is what is sent.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    deliveries = deliveries_latest(older_than_seconds=older_than_seconds)
    inbound = (
        Message.objects.filter(direction=Direction.INBOUND, status=MessageStatus.RECEIVED, updated_at__lte=cutoff)
        .order_by("contact_id", "received_at", "id")
        .values_list("contact_id", "pk")
    )
    outbound = (
        Message.objects.filter(
            direction=Direction.OUTBOUND,
            status__in=[MessageStatus.QUEUED, MessageStatus.SENDING],
            updated_at__lte=cutoff,
        )
        .order_by("contact_id", "created_at", "id")
        .values_list("contact_id", "pk")
    )
    counts = {"deliveries": 0, "inbound": 0, "outbound": 0, "failed": 0}
    for kind, rows, actor in (
        ("deliveries", deliveries, "inbound_deliveries_materialize_task"),
        ("inbound", inbound, "inbound_process_task"),
        ("outbound", outbound, "outbound_deliver_task"),
    ):
        seen: set[int | str] = set()
        for contact_id, pk in rows:
            if contact_id in seen:
                continue
            seen.add(contact_id)
            if enqueue_now(actor, pk):
                counts[kind] += 1
            else:
                counts["failed"] += 1
    counts["ai"] = ai_answers_give_up(older_than_seconds=older_than_seconds)
    if any(counts.values()):
        logger.info(
            "sweeper re-enqueued %(deliveries)s senders' deliveries, %(inbound)s inbound, %(outbound)s outbound "
            "(%(failed)s failed); "
            "gave up %(ai)s AI answers",
            counts,
        )
    return SweepReport(
        inbound=counts["inbound"],
        outbound=counts["outbound"],
        failed_enqueues=counts["failed"],
        ai_given_up=counts["ai"],
        deliveries=counts["deliveries"],
    )


@dataclass(frozen=True)
class PurgeReport:
    messages: int
    status_updates: int
    webhook_logs: int


@transaction.atomic
def payloads_purge(*, older_than_days: int | None = None) -> PurgeReport:
    """Clear raw provider payloads and webhook bodies older than the retention period
    (settings.RAW_PAYLOAD_RETENTION_DAYS). The rows stay; only the verbatim provider data goes."""
    days = settings.RAW_PAYLOAD_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    messages = Message.objects.filter(created_at__lt=cutoff).exclude(raw_payload={}).update(raw_payload={})
    statuses = StatusUpdate.objects.filter(created_at__lt=cutoff).exclude(raw_payload={}).update(raw_payload={})
    logs = WebhookLog.objects.filter(created_at__lt=cutoff).exclude(body="").update(body="", headers={})
    return PurgeReport(messages=messages, status_updates=statuses, webhook_logs=logs)
