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
from .enqueue import enqueue_now

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    inbound: int
    outbound: int
    failed_enqueues: int = 0


def sweeper_run(*, older_than_seconds: int) -> SweepReport:
    """Re-enqueue inbound rows still `received`, and outbound rows still `queued` / `sending`, untouched for
    longer than `older_than_seconds`. Safe to run any time: the actors claim rows, so extra tasks do nothing.

    One task per contact is enough (a task handles all of its contact's pending rows), so that is what is sent.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
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
    counts = {"inbound": 0, "outbound": 0, "failed": 0}
    for kind, rows, actor in (
        ("inbound", inbound, "inbound_process_task"),
        ("outbound", outbound, "outbound_deliver_task"),
    ):
        seen: set[int] = set()
        for contact_id, pk in rows:
            if contact_id in seen:
                continue
            seen.add(contact_id)
            if enqueue_now(actor, pk):
                counts[kind] += 1
            else:
                counts["failed"] += 1
    if counts["inbound"] or counts["outbound"] or counts["failed"]:
        logger.info("sweeper re-enqueued %(inbound)s inbound, %(outbound)s outbound (%(failed)s failed)", counts)
    return SweepReport(inbound=counts["inbound"], outbound=counts["outbound"], failed_enqueues=counts["failed"])


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
