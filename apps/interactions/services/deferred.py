"""Deferred ingest: the webhook stores a verified delivery in one INSERT, and the worker makes it a contact and a
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
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from apps.channels.base import InboundEvent, Media, MessageKind

from ..models import InboundDelivery
from .enqueue import enqueue_on_commit

MATERIALIZE_ACTOR = "inbound_deliveries_materialize_task"


def delivery_encode(event: InboundEvent, log: dict) -> str:
    """The stored form of a delivery: the event's fields and its WebhookLog fields (headers already redacted).

    ASCII JSON: a lone surrogate or a NUL in provider text is escaped here and cleaned when the message is stored.
    """
    values = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    values["received_at"] = event.received_at.isoformat() if event.received_at else None
    values["media"] = dataclasses.asdict(event.media) if event.media else None
    return json.dumps({"event": values, "log": log}, separators=(",", ":"))


def delivery_decode(text: str) -> tuple[InboundEvent, dict]:
    data = json.loads(text)
    values = data["event"]
    values["received_at"] = datetime.fromisoformat(values["received_at"]) if values["received_at"] else None
    values["media"] = Media(**values["media"]) if values["media"] else None
    values["kind"] = MessageKind(values["kind"])
    return InboundEvent(**values), data["log"]


def delivery_sender(event: InboundEvent) -> str:
    """The per-sender order key: the phone number (E.164 from every parser), else the BSUID; "" for neither.

    Not parsed again here: an unusable number still keys its sender's deliveries consistently, and the direct
    path the worker takes validates it as it always has.
    """
    return (event.sender_phone or event.sender_bsuid or "").strip()


@cache
def _insert_statement() -> str:
    return (
        f"INSERT INTO {InboundDelivery._meta.db_table} (channel, sender, delivery, created_at) "
        "VALUES (%s, %s, %s, %s) RETURNING id"
    )


@cache
def _take_statement() -> str:
    table = InboundDelivery._meta.db_table
    return (
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE sender = "
        f"(SELECT sender FROM {table} WHERE id = %s) AND id <= %s ORDER BY id FOR UPDATE) "
        "RETURNING id, channel, delivery"
    )


def deliveries_take(delivery_id: int) -> list[tuple[int, str, str]]:
    """Delete and return (id, channel, delivery) of `delivery_id` and its sender's earlier waiting deliveries.

    Run it inside the transaction that stores them, so a failure puts them back.
    """
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_take_statement(), [delivery_id, delivery_id])
        return cursor.fetchall()


def delivery_defer(*, event: InboundEvent, log: dict) -> bool:
    """Store `event` (one inbound message) and its WebhookLog fields `log` for the worker; enqueue on commit.

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
        (delivery_id,) = cursor.fetchone()
    enqueue_on_commit(MATERIALIZE_ACTOR, delivery_id)
    return True
