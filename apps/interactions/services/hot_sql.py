"""The worker's per-message statements on PostgreSQL, written out once instead of compiled by the ORM each time.

Why: every answered message runs each of these. In the P2 profile (py-spy, samples holding the GIL, one worker
thread) Django building them — filter() resolution, the compiler, the INSERT's field preparation — was about a
third of the worker's CPU per message, more than the statements' own round trips. Each statement is built once
per process from the models' metadata (table and column names are never spelled here), and takes its values as
parameters.

Each function keeps the ORM query it replaces as the path for other databases (SQLite under `make run`, which
tests/assistant/test_demo_sqlite.py drives); tests/interactions/test_single_statement_paths.py checks that the
reply INSERT writes the row Model.save writes, and counts the statements of a send.

The reply INSERT is `INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`: the ORM needs a
savepoint around its INSERT so that a concurrent create with the same key (IntegrityError) leaves the caller's
transaction usable; here no row back means the key is taken, and any other constraint still raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import cast

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import CharField, Model, TextField

from ..models import Contact, Direction, Interaction, Message, MessageStatus, StatusUpdate

# Outbound rows still to send: queued, or sending when a worker died mid-send.
PENDING = (MessageStatus.QUEUED, MessageStatus.SENDING)


def _postgresql():
    wrapper = connections[DEFAULT_DB_ALIAS]  # the proxy `connection` costs a lookup per attribute
    return wrapper if wrapper.vendor == "postgresql" else None


def _quote(name: str) -> str:
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(name)


def needs_preparation(field) -> bool:
    """Text columns take the value as it is; JSON, time and number columns go through the field's preparation
    (generic preparation of every value cost ~0.1 ms per row in the profiles)."""
    return not isinstance(field, CharField | TextField)


def db_values(fields: list, prepared: list[bool], values, wrapper) -> list:
    """`values` (one per field, in order) as the statement's parameters."""
    return [
        field.get_db_prep_save(value, connection=wrapper) if prepare else value
        for field, prepare, value in zip(fields, prepared, values, strict=True)
    ]


@cache
def _insert_statement(model: type[Model], conflict: str) -> tuple[str, list, list[bool]]:
    """(SQL, the fields it writes in order, per field: does its value need get_db_prep_save?)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    prepared = [needs_preparation(f) for f in fields]
    sql = (
        f"INSERT INTO {_quote(model._meta.db_table)} ({', '.join(_quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) {conflict} RETURNING {_quote(model._meta.pk.column)}"
    )
    return sql, fields, prepared


def _row_insert(wrapper, instance: Model, conflict: str = "") -> bool:
    """INSERT the unsaved `instance` as it is (created_at / updated_at set by the caller: no auto_now runs
    here); False, and nothing written, when `conflict` (an ON CONFLICT … DO NOTHING clause) skipped it."""
    sql, fields, prepared = _insert_statement(type(instance), conflict)
    params = db_values(fields, prepared, [getattr(instance, f.attname) for f in fields], wrapper)
    with wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = wrapper.alias
    return True


# --- the reply and the decision ------------------------------------------------------------------------------


def message_insert_unless_key_taken(message: Message) -> bool:
    """INSERT the unsaved outbound `message` (its idempotency_key set); False, and nothing written, when another
    row holds the key. Runs in the caller's transaction, or as a statement of its own outside one."""
    wrapper = _postgresql()
    if wrapper is None:
        try:
            with transaction.atomic():
                message.save(force_insert=True)
        except IntegrityError:
            return False  # the caller looks for the key's holder; with none it re-raises
        return True
    return _row_insert(wrapper, message, "ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING")


def interaction_insert(interaction: Interaction, now: datetime) -> Interaction:
    """Save the new `interaction` (created_at / updated_at = `now`)."""
    interaction.created_at = interaction.updated_at = now
    wrapper = _postgresql()
    if wrapper is None:
        interaction.save(force_insert=True)
    else:
        _row_insert(wrapper, interaction)
    return interaction


@cache
def _message_sql(name: str) -> str:
    table = _quote(Message._meta.db_table)
    return {
        "state": f"SELECT contact_id, status FROM {table} WHERE id = %s AND direction = %s",
        "inbound_claim": (
            f"UPDATE {table} SET status = %s, processed_at = %s, updated_at = %s WHERE id = %s AND status = %s"
        ),
        "key_holder": f"SELECT id, contact_id FROM {table} WHERE idempotency_key = %s ORDER BY id LIMIT 1",
        "pending": (
            f"SELECT id FROM {table} WHERE contact_id = %s AND direction = %s "
            f"AND status IN ({', '.join(['%s'] * len(PENDING))}) "
            f"ORDER BY created_at, id"
        ),
        "sent": (
            f"UPDATE {table} SET provider_message_id = %s, status = %s, sent_at = %s, error_code = '', "
            f"error_message = '', updated_at = %s WHERE id = %s AND status = %s "
            f"RETURNING EXISTS (SELECT 1 FROM {_quote(StatusUpdate._meta.db_table)} "
            f"WHERE channel = %s AND provider_message_id = %s)"
        ),
        "outbound_claim": (
            f"UPDATE {table} SET status = %s, attempts = %s, first_attempt_at = %s, updated_at = %s "
            f"WHERE id = %s AND status = %s AND attempts = %s"
        ),
    }[name]


def message_state(message_id: int, direction: str) -> tuple[int, str] | None:
    """(contact_id, status) of the message, or None when there is none in that direction."""
    wrapper = _postgresql()
    if wrapper is None:
        return Message.objects.filter(pk=message_id, direction=direction).values_list("contact_id", "status").first()
    with wrapper.cursor() as cursor:
        cursor.execute(_message_sql("state"), [message_id, direction])
        return cursor.fetchone()


def inbound_claim(message_id: int, now: datetime) -> bool:
    """received → processed, by exactly one caller."""
    wrapper = _postgresql()
    if wrapper is None:
        return bool(
            Message.objects.filter(pk=message_id, status=MessageStatus.RECEIVED).update(
                status=MessageStatus.PROCESSED, processed_at=now, updated_at=now
            )
        )
    with wrapper.cursor() as cursor:
        cursor.execute(
            _message_sql("inbound_claim"),
            [MessageStatus.PROCESSED, now, now, message_id, MessageStatus.RECEIVED],
        )
        return cursor.rowcount == 1


def key_holder(key: str) -> tuple[int, int] | None:
    """(id, contact_id) of the message holding idempotency `key`."""
    wrapper = _postgresql()
    if wrapper is None:
        return Message.objects.filter(idempotency_key=key).values_list("pk", "contact_id").first()
    with wrapper.cursor() as cursor:
        cursor.execute(_message_sql("key_holder"), [key])
        return cursor.fetchone()


def outbound_pending_ids(contact_id: int) -> list[int]:
    """The contact's outbound rows still to send (queued, or sending when a worker died), oldest first."""
    wrapper = _postgresql()
    if wrapper is None:
        return list(
            Message.objects.filter(contact_id=contact_id, direction=Direction.OUTBOUND, status__in=PENDING)
            .order_by("created_at", "id")
            .values_list("pk", flat=True)
        )
    with wrapper.cursor() as cursor:
        cursor.execute(_message_sql("pending"), [contact_id, Direction.OUTBOUND, *PENDING])
        return [row[0] for row in cursor.fetchall()]


def outbound_claim(*, pk: int, status: str, attempts: int, first_attempt_at: datetime, now: datetime) -> bool:
    """Take the row for sending while it is still in `status` with `attempts` (the snapshot read before)."""
    wrapper = _postgresql()
    if wrapper is None:
        return bool(
            Message.objects.filter(pk=pk, status=status, attempts=attempts).update(
                status=MessageStatus.SENDING, attempts=attempts + 1, first_attempt_at=first_attempt_at, updated_at=now
            )
        )
    with wrapper.cursor() as cursor:
        cursor.execute(
            _message_sql("outbound_claim"),
            [MessageStatus.SENDING, attempts + 1, first_attempt_at, now, pk, status, attempts],
        )
        return cursor.rowcount == 1


@dataclass(frozen=True)
class _Reader:
    """A model's columns in a SELECT, and how each value comes back as the ORM would give it."""

    fields: list
    names: list[str]
    converters: list[list]  # per field: the backend's and the field's from-database converters, in that order

    def instance(self, model: type[Model], values, wrapper) -> Model:
        converted = list(values)
        for index, converters in enumerate(self.converters):
            for converter in converters:
                converted[index] = converter(converted[index], self.fields[index], wrapper)
        # A field left out of `names` is deferred, as with QuerySet.defer().
        return model.from_db(wrapper.alias, self.names, converted)


def _reader(model: type[Model], alias: str, skip: tuple[str, ...] = ()) -> _Reader:
    wrapper = connections[DEFAULT_DB_ALIAS]
    columns = [f.get_col(alias) for f in model._meta.concrete_fields if f.attname not in skip]
    return _Reader(
        fields=columns,
        names=[c.target.attname for c in columns],
        converters=[wrapper.ops.get_db_converters(c) + c.get_db_converters(wrapper) for c in columns],
    )


@cache
def _waiting_statement(unless_ai_waiting: bool) -> tuple[str, _Reader, _Reader]:
    message = _reader(Message, "m", skip=("raw_payload",))
    contact = _reader(Contact, "c")
    contact_column = _quote(Message._meta.get_field("contact").column)
    pk = _quote(Message._meta.pk.column)
    columns = ", ".join(
        [f"m.{_quote(c.target.column)}" for c in message.fields]
        + [f"c.{_quote(c.target.column)}" for c in contact.fields]
    )
    sql = (
        f"SELECT {columns} FROM {_quote(Message._meta.db_table)} m "
        f"JOIN {_quote(Contact._meta.db_table)} c ON c.{_quote(Contact._meta.pk.column)} = m.{contact_column} "
        f"WHERE m.{contact_column} = %s AND m.direction = %s AND m.status = %s AND m.{pk} <> ALL(%s) "
        + (f"AND NOT EXISTS ({_ai_waiting_sql()}) " if unless_ai_waiting else "")
        + f"ORDER BY m.received_at, m.{pk} LIMIT %s"
    )
    return sql, message, contact


def inbound_waiting_query(contact_id: int):
    """The contact's inbound rows not processed yet, in arrival order (the ORM query; inbound_waiting's reference)."""
    return Message.objects.filter(
        contact_id=contact_id, direction=Direction.INBOUND, status=MessageStatus.RECEIVED
    ).order_by("received_at", "id")


def inbound_waiting(contact_id: int, *, skip: set[int], limit: int, ai_since: datetime | None = None) -> list[Message]:
    """The contact's first `limit` inbound rows still received (arrival order), except the ids in `skip`.

    Each comes with its contact as it is now (select_related) and raw_payload deferred: the rows the ORM query
    below returns, without compiling it for every message (it was 9 % of the worker's CPU in P2's profile).
    With `ai_since`, none while ai_answer_waiting(contact_id, ai_since): on PostgreSQL that check is a
    condition of the same statement (one round trip per message fewer).
    """
    wrapper = _postgresql()
    if wrapper is None:
        if ai_since is not None and ai_answer_waiting(contact_id, ai_since):
            return []
        rows = inbound_waiting_query(contact_id).exclude(pk__in=skip).select_related("contact").defer("raw_payload")
        return list(rows[:limit])
    sql, message_reader, contact_reader = _waiting_statement(ai_since is not None)
    split = len(message_reader.fields)
    params: list = [contact_id, Direction.INBOUND, MessageStatus.RECEIVED, list(skip)]
    if ai_since is not None:
        params += [contact_id, ai_since]
    with wrapper.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        rows = cursor.fetchall()
    messages: list[Message] = []
    for row in rows:
        message = cast(Message, message_reader.instance(Message, row[:split], wrapper))
        Message.contact.field.set_cached_value(message, contact_reader.instance(Contact, row[split:], wrapper))
        messages.append(message)
    return messages


@cache
def _ai_waiting_sql() -> str:
    """ai_answer_waiting's query as SQL, the condition inbound_waiting puts in its statement (NOT EXISTS)."""
    return (
        f"SELECT 1 FROM {_quote(Interaction._meta.db_table)} WHERE (context -> 'ai_pending') = 'true'::jsonb "
        f"AND reply_id IS NULL AND contact_id = %s AND created_at >= %s LIMIT 1"
    )


def ai_answer_waiting(contact_id: int, since: datetime) -> bool:
    """Whether one of the contact's Interactions since `since` was handed to the AI actor and has no reply (the
    ORM query: inbound_waiting's check on SQLite, and the reference for _ai_waiting_sql)."""
    return Interaction.objects.filter(
        context__ai_pending=True, reply__isnull=True, contact_id=contact_id, created_at__gte=since
    ).exists()


def outbound_sent_update(message: Message, provider_message_id: str | None, now: datetime) -> tuple[bool, bool]:
    """Mark the SENDING row sent with its provider id → (updated, receipts for that id arrived first).

    On PostgreSQL one statement answers both (UPDATE … RETURNING EXISTS …). Raises IntegrityError when another
    row already has the provider id.
    """
    wrapper = _postgresql()
    if wrapper is None:
        updated = Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
            provider_message_id=provider_message_id,
            status=MessageStatus.SENT,
            sent_at=now,
            error_code="",
            error_message="",
            updated_at=now,
        )
        early = bool(provider_message_id) and (
            StatusUpdate.objects.filter(channel=message.channel, provider_message_id=provider_message_id).exists()
        )
        return bool(updated), early
    with wrapper.cursor() as cursor:
        cursor.execute(
            _message_sql("sent"),
            [
                provider_message_id,
                MessageStatus.SENT,
                now,
                now,
                message.pk,
                MessageStatus.SENDING,
                message.channel,
                provider_message_id,
            ],
        )
        row = cursor.fetchone()
    return row is not None, bool(row and row[0])
