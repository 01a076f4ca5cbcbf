"""Deferred ingest: the webhook stores a verified delivery in one statement, and the worker makes it a contact and a
message (ingest.inbound_deliveries_materialize).

Why: P1 measured the webhooks at ~0.6 of the one-INSERT durable baseline while they stored, before answering,
the contact upsert, the message and the WebhookLog row (three rows and eight index entries in one statement).
Storing the delivery alone measured 0.86 (bench/inbox/, the same verification and parsing). The 2xx still
follows the commit of everything the provider sent, so nothing is lost, and the broker-down case is the
sweeper's as before. Duplicates now stop one step later: the webhook cannot tell a retried delivery from a new
one, so each lands here, and the message's unique constraint drops the copies when the worker stores them.

Only a delivery of one inbound message on PostgreSQL is deferred (nearly every webhook call). Batches, status
receipts, a sender with neither phone nor BSUID (skipped with a log line) and SQLite take the direct path, as
does the sandbox chat, which shows the stored message at once.

The webhook does not touch the broker: its statement also issues a PostgreSQL NOTIFY (delivered when it commits),
and one worker process's pump (apps/interactions/pump.py) turns each into a materialize task. An enqueue from
the webhook measured ~0.15 ms of client CPU per request, the difference between P1's Twilio webhook at 0.69 and
0.84-0.90 of the durable baseline. A delivery whose notification no pump heard (no worker running, a broker
outage) is taken when a pump starts or catches up, and by the sweeper.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Max
from django.utils import timezone

from apps.channels.base import InboundEvent, Media, MessageKind

from ..models import InboundDelivery
from .enqueue import enqueue_now

MATERIALIZE_ACTOR = "inbound_deliveries_materialize_task"
# The PostgreSQL notification channel a stored delivery's id is announced on (payload: the id).
NOTIFY_CHANNEL = "relay_inbound_delivery"


def delivery_encode(event: InboundEvent, log: dict) -> str:
    """The stored form of a delivery: the event's fields and its WebhookLog fields (headers already redacted).

    ASCII JSON: a lone surrogate or a NUL in provider text is escaped here and cleaned when the message is stored.
    """
    values = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    values["received_at"] = event.received_at.isoformat() if event.received_at else None
    values["media"] = dataclasses.asdict(event.media) if event.media else None
    return json.dumps({"event": values, "log": log}, separators=(",", ":"))


def delivery_decode(text: str) -> tuple[InboundEvent, dict]:
    """The event and WebhookLog fields of a stored delivery. Tolerates a row written by another release (one
    that waited across a deploy): fields this release does not know are dropped, missing ones take their
    defaults. Raises ValueError, KeyError or TypeError for a row it cannot read."""
    data = json.loads(text)
    known = _field_names(InboundEvent)
    values = {key: value for key, value in data["event"].items() if key in known}
    if values.get("received_at"):
        values["received_at"] = datetime.fromisoformat(values["received_at"])
    if values.get("media"):
        media_fields = _field_names(Media)
        values["media"] = Media(**{k: v for k, v in values["media"].items() if k in media_fields})
    if "kind" in values:
        values["kind"] = MessageKind(values["kind"])
    return InboundEvent(**values), data["log"]


@cache
def _field_names(dataclass_type: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(dataclass_type))


def delivery_sender(event: InboundEvent) -> str:
    """The per-sender order key: the phone number (E.164 from every parser), else the BSUID; "" for neither.

    Not parsed again here: an unusable number still keys its sender's deliveries consistently, and the direct
    path the worker takes validates it as it always has.
    """
    return (event.sender_phone or event.sender_bsuid or "").strip()


@cache
def _insert_statement() -> str:
    # One round trip: the row and its notification, which PostgreSQL delivers when the transaction commits.
    return (
        f"WITH stored AS (INSERT INTO {InboundDelivery._meta.db_table} (channel, sender, delivery, created_at) "
        f"VALUES (%s, %s, %s, %s) RETURNING id) SELECT id, pg_notify('{NOTIFY_CHANNEL}', id::text) FROM stored"
    )


@cache
def _waiting_statement() -> str:
    table = InboundDelivery._meta.db_table
    return (
        f"SELECT id, channel, delivery FROM {table} WHERE sender = (SELECT sender FROM {table} WHERE id = %s) "
        "AND id <= %s ORDER BY id"
    )


def deliveries_waiting(delivery_id: int) -> list[tuple[int, str, str]]:
    """(id, channel, delivery) of `delivery_id` and its sender's earlier waiting deliveries, oldest first; none
    when it is gone. Not locked: whoever stores one deletes it in the same statement (ingest_sql's `take`)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_waiting_statement(), [delivery_id, delivery_id])
        return cursor.fetchall()


def delivery_delete(delivery_id: int) -> bool:
    """Delete a waiting delivery (inside the transaction that stores it); False if another task took it."""
    return InboundDelivery.objects.filter(pk=delivery_id).delete()[0] > 0


def deliveries_latest(*, older_than_seconds: int = 0) -> list[tuple[str, int]]:
    """(sender, latest waiting delivery id) of every sender with a delivery older than `older_than_seconds`: one
    materialize task per sender is enough, as a delivery's task takes its sender's earlier ones."""
    queryset = InboundDelivery.objects.all()
    if older_than_seconds:
        queryset = queryset.filter(created_at__lte=timezone.now() - timedelta(seconds=older_than_seconds))
    return list(queryset.values("sender").annotate(last=Max("pk")).order_by("last").values_list("sender", "last"))


def deliveries_wake() -> tuple[int, bool]:
    """Enqueue a materialize task for every sender with waiting deliveries. Returns (tasks sent, all sent); it
    stops at the first failed enqueue (the broker is away: the next try sends them all again)."""
    sent = 0
    for _, delivery_id in deliveries_latest():
        if not enqueue_now(MATERIALIZE_ACTOR, delivery_id):
            return sent, False
        sent += 1
    return sent, True


def delivery_defer(*, event: InboundEvent, log: dict) -> bool:
    """Store `event` (one inbound message) and its WebhookLog fields `log` for the worker, and announce it (the
    notification reaches the worker's pump when the transaction commits).

    Returns False, having written nothing, where the delivery must take the direct path: not PostgreSQL, or a
    sender with neither a phone number nor a BSUID (the direct path skips it and says so).
    """
    wrapper = connections[DEFAULT_DB_ALIAS]
    if wrapper.vendor != "postgresql":
        return False
    sender = delivery_sender(event)
    if not sender:
        return False
    with wrapper.cursor() as cursor:
        cursor.execute(_insert_statement(), [event.channel, sender[:200], delivery_encode(event, log), timezone.now()])
    return True
