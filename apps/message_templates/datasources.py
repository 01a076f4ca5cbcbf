"""Running data sources: read-only SQL with bound parameters, or a registered Python resolver.

SQL runs on the default database inside its own transaction (or savepoint) that is always rolled back:
PostgreSQL gets `SET TRANSACTION READ ONLY`, a local `statement_timeout` and, when DATASOURCE_DATABASE_ROLE
is set, `SET LOCAL ROLE` to that (restricted) role; SQLite gets `PRAGMA query_only` and a progress-handler
deadline. Parameters are always bound by the driver (`%(name)s`), never formatted
into the SQL. Queries are also checked when saved (`query_check`): one SELECT statement, known parameters.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Any

import sqlparse
from django.conf import settings
from django.db import DatabaseError, connections, transaction

from .exceptions import DataSourceError
from .models import DataSource, DataSourceKind

# What a query may bind: the pipeline's message context plus what `datasource_run` derives from it.
CONTEXT_PARAMETERS = (
    "contact_phone",
    "contact_name",
    "contact_bsuid",
    "entity",
    "entity_normalized",
    "text",
    "channel",
    "message_id",
    "language",
)
_PARAMETER_RE = re.compile(r"%\((\w+)\)s")
# Functions that reach outside the database (server files, other sessions, configuration), run SQL built
# from strings (which would slip past this check), change the transaction's settings or take session-level
# locks that outlive the rolled-back transaction. READ ONLY does not stop them when the role is privileged
# (a superuser in local development and tests), so they are refused here; DATASOURCE_DATABASE_ROLE is the
# stronger fence. Matched in the raw text, so a name inside a string literal is refused too.
_FORBIDDEN_FUNCTIONS_RE = re.compile(
    r"""(?<![\w$])"?(
        pg_read_file | pg_read_binary_file | pg_stat_file | pg_ls_\w+ | pg_file_\w+ | pg_logdir_ls
        | lo_import | lo_export | dblink\w* | pg_terminate_backend | pg_cancel_backend | pg_signal_backend
        | pg_reload_conf | pg_rotate_logfile | pg_promote | set_config | pg_notify
        | query_to_xml\w* | cursor_to_xml\w* | pg_advisory\w* | pg_try_advisory\w*
    )"?\s*\(""",
    re.IGNORECASE | re.VERBOSE,
)


@functools.lru_cache(maxsize=1024)
def query_problems(query: str) -> tuple[str, ...]:
    """Why `query` may not be used as a data source (empty when it may): one SELECT, no forbidden function,
    known parameters."""
    problems: list[str] = []
    statements = [s for s in sqlparse.parse(query) if s.value.strip(" \n\t;")]
    if not statements:
        return ("The query is empty.",)
    if len(statements) > 1:
        problems.append(f"The query must be a single statement (found {len(statements)}).")
    for statement in statements:
        kind = statement.get_type()
        if kind != "SELECT":
            problems.append(f"Only SELECT queries are allowed (found {kind or 'an unknown statement'}).")
            break
    forbidden = sorted({name.lower() for name in _FORBIDDEN_FUNCTIONS_RE.findall(query)})
    if forbidden:
        problems.append(f"Function(s) not allowed in a data source: {', '.join(forbidden)}.")
    unknown = sorted(set(_PARAMETER_RE.findall(query)) - set(CONTEXT_PARAMETERS))
    if unknown:
        problems.append(
            "Unknown parameter(s) "
            + ", ".join(f"%({name})s" for name in unknown)
            + "; available: "
            + ", ".join(CONTEXT_PARAMETERS)
            + "."
        )
    # A lone % that is not a parameter breaks binding; literal percent signs are written %%.
    stripped = _PARAMETER_RE.sub("", query).replace("%%", "")
    if "%" in stripped:
        problems.append("Write a literal percent sign as %% (a single % is read as a parameter).")
    return tuple(problems)


def query_check(*, query: str) -> None:
    """Raise DataSourceError naming every problem of `query` (used by the admin form and at run time)."""
    problems = query_problems(query)
    if problems:
        raise DataSourceError(" ".join(problems), {"problems": list(problems)})


def _bind_parameters(context: dict[str, str]) -> dict[str, str]:
    from .matching import normalize

    params = {name: str(context.get(name) or "") for name in CONTEXT_PARAMETERS}
    if not params["entity_normalized"]:
        params["entity_normalized"] = normalize(params["entity"])
    return params


_SAVEPOINT = "relay_datasource"


def datasource_run(*, data_source: DataSource, context: dict[str, str]) -> dict[str, Any] | None:
    """The first row of `data_source` for `context` as {column: value}, or None when there is no row.

    Raises DataSourceError on an invalid query, a database error (including writes refused by the read-only
    transaction), a timeout, or an unknown resolver.
    """
    if data_source.kind == DataSourceKind.PYTHON:
        return _resolver_run(data_source=data_source, context=context)
    query_check(query=data_source.query)
    timeout_ms = data_source.timeout_ms or settings.DATASOURCE_STATEMENT_TIMEOUT_MS
    return _sql_run(
        name=data_source.name, query=data_source.query, params=_bind_parameters(context), timeout_ms=timeout_ms
    )


def _resolver_run(*, data_source: DataSource, context: dict[str, str]) -> dict[str, Any] | None:
    from .resolvers import resolver_get

    fn = resolver_get(data_source.resolver)
    if fn is None:
        raise DataSourceError(
            f"Data source '{data_source.name}': no resolver named '{data_source.resolver}' is registered.",
            {"data_source": data_source.name},
        )
    try:
        # In a savepoint: a database error inside the resolver leaves the caller's transaction usable.
        with transaction.atomic(using="default"):
            row = fn(context=dict(_bind_parameters(context)))
    except DataSourceError:
        raise
    except Exception as exc:
        raise DataSourceError(
            f"Data source '{data_source.name}': resolver '{data_source.resolver}' failed: {exc}",
            {"data_source": data_source.name},
        ) from exc
    return dict(row) if row else None


def _sql_run(*, name: str, query: str, params: dict[str, str], timeout_ms: int) -> dict[str, Any] | None:
    connection = connections["default"]
    started = time.monotonic()
    try:
        if connection.vendor == "postgresql" and connection.in_atomic_block:
            return _postgresql_run_nested(connection, query, params, timeout_ms)
        with transaction.atomic(using="default"), connection.cursor() as cursor:
            try:
                if connection.vendor == "postgresql":
                    cursor.execute(_postgresql_setup(connection, timeout_ms))
                    cursor.execute(query, params)
                    return _first_row(cursor)
                if connection.vendor == "sqlite":
                    return _sqlite_run(connection, cursor, query, params, timeout_ms)
                cursor.execute(query, params)
                return _first_row(cursor)
            finally:
                # Read-only work: nothing of this transaction (or savepoint) is kept, and on PostgreSQL the
                # rollback also restores the outer transaction's read/write mode and statement timeout.
                transaction.set_rollback(True, using="default")
    except DatabaseError as exc:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        if "statement timeout" in message or "interrupted" in message:
            message = f"timed out after {timeout_ms} ms"
        raise DataSourceError(
            f"Data source '{name}' failed: {message}",
            {"data_source": name, "elapsed_ms": elapsed_ms},
        ) from exc


def _postgresql_setup(connection, timeout_ms: int) -> str:
    """The settings of a data source's transaction, as one statement string (no parameters: the timeout is an
    int, the role a quoted identifier from settings)."""
    setup = ["SET TRANSACTION READ ONLY"]
    if settings.DATASOURCE_DATABASE_ROLE:
        # A role with SELECT on the business tables only: what it cannot see, no query can.
        setup.append(f"SET LOCAL ROLE {connection.ops.quote_name(settings.DATASOURCE_DATABASE_ROLE)}")
    setup.append(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
    return "; ".join(setup)


def _postgresql_run_nested(connection, query: str, params: dict[str, str], timeout_ms: int) -> dict[str, Any] | None:
    """The query in a savepoint of the caller's transaction, in three round trips instead of atomic()'s five.

    The savepoint goes with the settings; the query is sent alone (a syntax error in a string of several
    statements would run none of them, the savepoint included). Rolling back to the savepoint undoes READ ONLY,
    the role and the timeout, and any error of the query, so the caller's transaction goes on as before.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SAVEPOINT {_SAVEPOINT}; {_postgresql_setup(connection, timeout_ms)}")
        try:
            cursor.execute(query, params)
            return _first_row(cursor)
        finally:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}")


def _sqlite_run(connection, cursor, query: str, params: dict[str, str], timeout_ms: int) -> dict[str, Any] | None:
    raw = connection.connection
    deadline = time.monotonic() + timeout_ms / 1000
    # Best effort for the embedded default: refuse writes and interrupt long queries.
    raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
    cursor.execute("PRAGMA query_only = ON")
    try:
        cursor.execute(query, params)
        return _first_row(cursor)
    finally:
        cursor.execute("PRAGMA query_only = OFF")
        raw.set_progress_handler(None, 0)


def _first_row(cursor) -> dict[str, Any] | None:
    if cursor.description is None:
        return None
    row = cursor.fetchone()
    if row is None:
        return None
    return {column[0]: value for column, value in zip(cursor.description, row, strict=False)}
