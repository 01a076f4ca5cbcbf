"""Data sources: READ ONLY transactions, statement timeouts, bound parameters, save-time checks, resolvers."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

from apps.message_templates.datasources import datasource_run, query_problems
from apps.message_templates.exceptions import DataSourceError
from apps.message_templates.models import DataSourceKind, DemoEvent
from apps.message_templates.resolvers import resolver

from .factories import DataSourceFactory

pytestmark = pytest.mark.django_db

EVENTS = "message_templates_demoevent"


def run(query: str, context: dict | None = None, **fields):
    return datasource_run(data_source=DataSourceFactory.build(query=query, **fields), context=context or {})


def test_the_first_row_comes_back_as_columns():
    row = run("SELECT 'a' AS x, 2 AS y UNION ALL SELECT 'b', 3 ORDER BY 1")
    assert row == {"x": "a", "y": 2}
    assert run("SELECT 1 AS x WHERE false") is None


def test_a_write_hidden_in_a_select_is_refused_by_the_database(demo):
    before = list(DemoEvent.objects.values_list("name", "location").order_by("name"))
    # A data-modifying CTE passes the SELECT-only check: the READ ONLY transaction is what stops it.
    for query in (
        f"WITH gone AS (DELETE FROM {EVENTS} RETURNING name) SELECT * FROM gone",
        f"WITH moved AS (UPDATE {EVENTS} SET location = 'x' RETURNING name) SELECT * FROM moved",
        f"WITH added AS (INSERT INTO {EVENTS} (name, starts_at, location, description, search_text) "
        "VALUES ('Intruso', now(), 'x', '', '') RETURNING name) SELECT * FROM added",
    ):
        assert query_problems(query) == ()
        with pytest.raises(DataSourceError) as caught:
            run(query)
        assert "read-only transaction" in caught.value.message
    assert list(DemoEvent.objects.values_list("name", "location").order_by("name")) == before


def test_insert_and_update_statements_are_refused_before_reaching_the_database():
    for query, kind in (
        (f"INSERT INTO {EVENTS} (name) VALUES ('x')", "INSERT"),
        (f"UPDATE {EVENTS} SET name = 'x'", "UPDATE"),
        (f"DELETE FROM {EVENTS}", "DELETE"),
        (f"DROP TABLE {EVENTS}", "DROP"),
    ):
        assert query_problems(query) == (f"Only SELECT queries are allowed (found {kind}).",)
        with pytest.raises(DataSourceError) as caught:
            run(query)
        assert caught.value.message == f"Only SELECT queries are allowed (found {kind})."


def test_several_statements_unknown_parameters_and_lone_percent_signs_are_refused():
    assert query_problems(f"SELECT 1; DELETE FROM {EVENTS}") == (
        "The query must be a single statement (found 2).",
        "Only SELECT queries are allowed (found DELETE).",
    )
    assert query_problems("SELECT 1; COMMIT") == (
        "The query must be a single statement (found 2).",
        "Only SELECT queries are allowed (found COMMIT).",
    )
    (unknown,) = query_problems("SELECT %(password)s AS p")
    assert unknown.startswith("Unknown parameter(s) %(password)s; available: contact_phone, contact_name")
    assert query_problems("SELECT name FROM x WHERE name LIKE 'a%'") == (
        "Write a literal percent sign as %% (a single % is read as a parameter).",
    )
    assert query_problems("SELECT name FROM x WHERE name LIKE 'a%%' || %(entity)s") == ()
    assert query_problems("   ") == ("The query is empty.",)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("SELECT pg_read_file('/etc/passwd') AS event_name", "pg_read_file"),
        ("SELECT string_agg(f, ',') AS x FROM pg_ls_dir('/') AS f", "pg_ls_dir"),
        ("SELECT pg_catalog.PG_READ_BINARY_FILE('/etc/hosts') AS x", "pg_read_binary_file"),
        ("SELECT set_config('transaction_read_only', 'off', true) AS x", "set_config"),
        ("SELECT query_to_xml('SELECT 1', true, true, '') AS x", "query_to_xml"),
        ("SELECT pg_advisory_lock(1) AS x, pg_terminate_backend(1) AS y", "pg_advisory_lock, pg_terminate_backend"),
        ("SELECT lo_import('/etc/passwd') AS x", "lo_import"),
    ],
)
def test_functions_that_reach_outside_the_database_are_refused(query, names):
    message = f"Function(s) not allowed in a data source: {names}."
    assert query_problems(query) == (message,)
    with pytest.raises(DataSourceError) as caught:
        run(query)
    assert caught.value.message == message


def test_names_of_forbidden_functions_as_plain_text_or_parts_of_other_names_are_fine():
    assert query_problems("SELECT name FROM x WHERE name = 'set_config' AND my_pg_read_file(1) = 1") == ()


def test_queries_run_as_the_configured_restricted_role(settings, demo):
    role = "relay_h3_test_datasource_reader"
    with connection.cursor() as cursor:
        # Inside the test's transaction: the role and its grant are rolled back with it.
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"GRANT SELECT ON {EVENTS} TO {role}")
    settings.DATASOURCE_DATABASE_ROLE = role
    assert run(f"SELECT current_user AS who, count(*) AS n FROM {EVENTS}") == {"who": role, "n": 4}
    with pytest.raises(DataSourceError) as caught:
        run("SELECT count(*) AS n FROM auth_user", name="users")
    assert caught.value.message == "Data source 'users' failed: permission denied for table auth_user"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() != (role,)


def test_a_slow_query_is_stopped_by_the_statement_timeout():
    started = time.monotonic()
    with pytest.raises(DataSourceError) as caught:
        run("SELECT pg_sleep(5) AS slept", timeout_ms=200, name="slow")
    assert caught.value.message == "Data source 'slow' failed: timed out after 200 ms"
    assert caught.value.code == "DATASOURCE_ERROR"
    assert time.monotonic() - started < 3


def test_the_outer_transaction_stays_writable_and_keeps_its_timeout():
    with transaction.atomic():
        DemoEvent.objects.create(name="Antes", starts_at="2030-01-01T00:00Z", location="x")
        assert run(
            "SELECT current_setting('transaction_read_only') AS ro, current_setting('statement_timeout') AS t"
        ) == {
            "ro": "on",
            "t": "2s",
        }
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('transaction_read_only'), current_setting('statement_timeout')")
            assert cursor.fetchone() == ("off", "0")
        # Also after a failed (timed out) query.
        with pytest.raises(DataSourceError):
            run("SELECT pg_sleep(2)", timeout_ms=50)
        DemoEvent.objects.create(name="Después", starts_at="2030-01-01T00:00Z", location="x")
    assert set(DemoEvent.objects.values_list("name", flat=True)) == {"Antes", "Después"}


def test_sql_injection_in_the_entity_is_bound_as_text_not_executed(demo):
    names = sorted(DemoEvent.objects.values_list("name", flat=True))
    attacks = [
        f"x'; DELETE FROM {EVENTS}; --",
        "' OR '1'='1",
        "jóvenes%' UNION SELECT version() --",
        "%(contact_phone)s",
        "\\'; DROP TABLE message_templates_demoevent; --",
    ]
    for attack in attacks:
        assert run("SELECT %(entity)s AS echoed", {"entity": attack}) == {"echoed": attack}
        row = run(
            f"SELECT count(*) AS n FROM {EVENTS} WHERE name = %(entity)s OR search_text = %(entity)s",
            {"entity": attack},
        )
        assert row == {"n": 0}
    assert sorted(DemoEvent.objects.values_list("name", flat=True)) == names


def test_missing_context_keys_bind_as_empty_strings_and_the_entity_is_normalised():
    row = run("SELECT %(contact_name)s AS name, %(entity_normalized)s AS norm", {"entity": "Jóvenes ADULTOS!"})
    assert row == {"name": "", "norm": "jovenes adultos"}


def test_a_database_error_names_the_data_source():
    with pytest.raises(DataSourceError) as caught:
        run("SELECT nope FROM message_templates_no_such_table", name="broken")
    assert caught.value.message.startswith("Data source 'broken' failed: relation")
    assert caught.value.extra["data_source"] == "broken"


@resolver("test_echo_entity")
def _echo_entity(*, context):
    return {"value": context["entity"].upper(), "normalized": context["entity_normalized"]}


@resolver("test_failing")
def _failing(*, context):
    raise RuntimeError("backend down")


def test_python_resolvers_registered_by_decorator_provide_rows():
    source = DataSourceFactory.build(kind=DataSourceKind.PYTHON, resolver="test_echo_entity", name="echo")
    assert datasource_run(data_source=source, context={"entity": "Niños"}) == {
        "value": "NIÑOS",
        "normalized": "ninos",
    }
    contact = DataSourceFactory.build(kind=DataSourceKind.PYTHON, resolver="contact")
    assert datasource_run(data_source=contact, context={"contact_name": "Ana\tMaría", "contact_phone": "+1"}) == {
        "contact_name": "Ana María",
        "contact_phone": "+1",
        "entity": "",
    }


def test_unknown_and_failing_resolvers_raise_data_source_errors():
    unknown = DataSourceFactory.build(kind=DataSourceKind.PYTHON, resolver="nobody", name="ghost")
    with pytest.raises(DataSourceError) as caught:
        datasource_run(data_source=unknown, context={})
    assert caught.value.message == "Data source 'ghost': no resolver named 'nobody' is registered."
    failing = DataSourceFactory.build(kind=DataSourceKind.PYTHON, resolver="test_failing", name="flaky")
    with pytest.raises(DataSourceError) as caught:
        datasource_run(data_source=failing, context={})
    assert caught.value.message == "Data source 'flaky': resolver 'test_failing' failed: backend down"
