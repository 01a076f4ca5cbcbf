"""Single statements that may fail on a constraint, run without the cost of a transaction of their own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection, transaction


@contextlib.contextmanager
def statement_guard() -> Iterator[None]:
    """Wrap ONE statement that may raise IntegrityError and be recovered from.

    Outside a transaction (autocommit) the statement is its own transaction: a failure leaves nothing behind,
    and no BEGIN / SAVEPOINT round trips are spent. Inside a caller's transaction a failed statement would
    abort it, so a savepoint is taken there.
    """
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
    else:
        yield
