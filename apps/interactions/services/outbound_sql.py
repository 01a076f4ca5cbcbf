"""The reply insert on PostgreSQL: one statement, no savepoint.

The ORM path (outbound._insert) needs a savepoint around its INSERT so that a concurrent create with the same
idempotency key (IntegrityError) leaves the caller's transaction usable: three round trips, plus the ORM's
compilation of the INSERT, on every reply. `INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`
says the same in one statement that cannot fail on that key: no row back means the key is taken, and the caller
reads the row that holds it. Any other constraint still raises IntegrityError.
"""

from __future__ import annotations

from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import CharField, TextField

from ..models import Message


@cache
def _statement() -> tuple[str, list, list[bool]]:
    """(SQL, the fields it writes in order, per field: does its value need get_db_prep_save?); built once."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    prepared = [not isinstance(f, CharField | TextField) for f in fields]
    sql = (
        f"INSERT INTO {quote(Message._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id"
    )
    return sql, fields, prepared


def message_insert_unless_key_taken(message: Message) -> bool:
    """INSERT the unsaved `message` (its idempotency_key set); False, and nothing written, when the key is taken.

    On success `message` is the saved row (pk set, as Model.save leaves it). created_at / updated_at must be set
    by the caller: no auto_now runs here.
    """
    wrapper = connections[DEFAULT_DB_ALIAS]
    sql, fields, prepared = _statement()
    params = [
        field.get_db_prep_save(getattr(message, field.attname), connection=wrapper)
        if prepare
        else getattr(message, field.attname)
        for field, prepare in zip(fields, prepared, strict=True)
    ]
    with wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    message.pk = row[0]
    message._state.adding = False
    message._state.db = wrapper.alias
    return True
