"""deploy/web.sh, deploy/worker.sh and deploy/migrate.sh, started the way App Service starts them, against
the local PostgreSQL (a database of their own) and Redis, with the Bicep app settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import dramatiq
import httpx
import psycopg
import pytest
from django.core.cache import cache
from dramatiq.brokers.redis import RedisBroker

from apps.core.telemetry import TRACE_CONTEXT_OPTION
from tests.support import free_port

from .bicep import ROOT
from .conftest import production_env
from .emulators import ApplicationInsightsIngestion

pytestmark = pytest.mark.slow


def web_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return production_env(
        "web",
        database_url=database_url,
        redis_url=redis_url,
        WEB_CONCURRENCY="2",
        DRAMATIQ_NAMESPACE=f"relay-deploy-{uuid.uuid4().hex[:8]}",
        **extra,
    )


def run_migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "deploy/migrate.sh"],
        cwd=ROOT,
        env={**env, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def ingestion():
    emulator = ApplicationInsightsIngestion().start()
    yield emulator
    emulator.stop()


def test_web_sh_migrates_then_serves_health_through_gunicorn_with_telemetry(
    deploy_database_url, redis_url, start_script, ingestion
):
    env = web_env(
        deploy_database_url,
        redis_url,
        RELAY_BUILD_ID=f"web-{uuid.uuid4().hex}",
        APPLICATIONINSIGHTS_CONNECTION_STRING=ingestion.connection_string,
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",
        OTEL_BSP_SCHEDULE_DELAY="200",
        # The default rate-limited sampler may drop a trace; the assertions need every one.
        OTEL_TRACES_SAMPLER="always_on",
    )
    web = start_script("deploy/web.sh", env)
    # As App Service's front end sends it: the public host name, the original scheme in X-Forwarded-Proto.
    headers = {"Host": env["WEBSITE_HOSTNAME"], "X-Forwarded-Proto": "https"}
    response = web.wait_for_health(timeout=120, headers=headers)

    body = response.json()
    assert body["status"] == "healthy"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "up",
        "cache": "up",
        "broker": "up",
    }
    assert body["checks"]["database"]["vendor"] == "postgresql"
    assert body["checks"]["broker"]["backend"] == "RedisBroker"
    assert response.headers["Server"] == "gunicorn"
    output = web.output()
    assert f"migrate: applying migrations for build {env['RELAY_BUILD_ID']}" in output
    assert "Booting worker" in output

    # Static files come from whitenoise, collected at build (or at start when the build did not).
    static = httpx.get(web.url + "/static/admin/css/base.css", headers=headers, timeout=5)
    assert static.status_code == 200
    assert static.headers["Content-Type"].startswith("text/css")

    # Plain HTTP from outside is sent to HTTPS (the front end terminates TLS); health is exempt above.
    redirect = httpx.get(web.url + "/admin/", headers={"Host": env["WEBSITE_HOSTNAME"]}, timeout=5)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == f"https://{env['WEBSITE_HOSTNAME']}/admin/"

    # configure_azure_monitor() ran in the web process: the request reached Application Insights.
    def is_health_request(request):
        return any(
            e.get("data", {}).get("baseType") == "RequestData" and "/health/" in e["data"]["baseData"].get("url", "")
            for e in ingestion.envelopes_of(request)
        )

    ingestion.wait_for(1, timeout=30, predicate=is_health_request)
    assert web.stop() == 0


def test_migrate_sh_runs_once_per_build_even_when_instances_start_together(deploy_database_url, redis_url):
    env = web_env(deploy_database_url, redis_url, RELAY_BUILD_ID=f"together-{uuid.uuid4().hex}")
    processes = [
        subprocess.Popen(
            ["bash", "deploy/migrate.sh"],
            cwd=ROOT,
            env={**env, "PYTHON": sys.executable},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0]
    build = env["RELAY_BUILD_ID"]
    assert sum(f"migrate: applying migrations for build {build}" in out for out in outputs) == 1, outputs
    assert sum(f"migrate: build {build} already migrated" in out for out in outputs) == 2, outputs

    again = run_migrate(env)
    assert again.returncode == 0
    assert f"migrate: build {build} already migrated" in again.stdout
    with psycopg.connect(deploy_database_url) as conn:
        marker = conn.execute("SELECT build_id FROM relay_deploy_marker WHERE name = 'migrate'").fetchone()
    assert marker == (build,)


def test_migrate_sh_grants_the_worker_role_row_privileges_on_every_table(deploy_database_url, redis_url):
    role = f"relay_worker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(deploy_database_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
    try:
        env = web_env(
            deploy_database_url, redis_url, RELAY_BUILD_ID=f"grants-{uuid.uuid4().hex}", DATABASE_GRANT_ROLES=role
        )
        result = run_migrate(env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"migrate: row privileges granted to {role}" in result.stdout
        with psycopg.connect(deploy_database_url) as conn:
            privileges = conn.execute(
                "SELECT has_table_privilege(%s, 'interactions_message', 'INSERT'),"
                " has_table_privilege(%s, 'interactions_message', 'TRUNCATE')",
                [role, role],
            ).fetchone()
        assert privileges == (True, False)
    finally:
        with psycopg.connect(deploy_database_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_worker_sh_runs_dramatiq_and_answers_health_with_broker_and_heartbeat(
    deploy_database_url, redis_url, start_script, ingestion
):
    migrated = run_migrate(web_env(deploy_database_url, redis_url, RELAY_BUILD_ID=f"w-{uuid.uuid4().hex}"))
    assert migrated.returncode == 0, migrated.stderr
    namespace = f"relay-deploy-{uuid.uuid4().hex[:8]}"
    env = production_env(
        "worker",
        database_url=deploy_database_url,
        redis_url=redis_url,
        DRAMATIQ_THREADS="2",
        DRAMATIQ_NAMESPACE=namespace,
        WORKER_HEARTBEAT_GRACE_SECONDS="0",
        WORKER_HEARTBEAT_SECONDS="1",
        APPLICATIONINSIGHTS_CONNECTION_STRING=ingestion.connection_string,
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",
        OTEL_BSP_SCHEDULE_DELAY="200",
        # The default rate-limited sampler may drop a trace; the assertions need every one.
        OTEL_TRACES_SAMPLER="always_on",
    )
    worker = start_script("deploy/worker.sh", env)
    response = worker.wait_for_health(timeout=90)

    body = response.json()
    assert body["status"] == "healthy" and body["role"] == "worker"
    assert body["checks"]["broker"]["status"] == "up"
    assert body["checks"]["broker"]["backend"] == "RedisBroker"
    assert body["checks"]["heartbeat"]["status"] == "up"
    assert body["checks"]["heartbeat"]["age_seconds"] < 120
    assert "Worker process is ready for action" in worker.output()

    # A message enqueued inside a trace (as the webhook does) is processed in that same operation, and the
    # worker's database queries are dependencies of it: configure_azure_monitor() ran at worker boot.
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    sender = RedisBroker(url=redis_url, namespace=namespace, middleware=[])
    sent = sender.enqueue(
        dramatiq.Message(
            queue_name="default",
            actor_name="inbound_process_task",
            args=(0,),
            kwargs={},
            options={TRACE_CONTEXT_OPTION: {"traceparent": f"00-{trace_id}-{parent_id}-01"}},
        )
    )

    def in_operation(base_type: str):
        def predicate(request) -> bool:
            return any(
                e.get("data", {}).get("baseType") == base_type and e.get("tags", {}).get("ai.operation.id") == trace_id
                for e in ingestion.envelopes_of(request)
            )

        return predicate

    ingestion.wait_for(1, timeout=30, predicate=in_operation("RemoteDependencyData"))
    ingestion.wait_for(1, timeout=30, predicate=in_operation("RequestData"))
    envelopes = [e for e in ingestion.envelopes() if e.get("tags", {}).get("ai.operation.id") == trace_id]
    [processed] = [e for e in envelopes if e["data"]["baseType"] == "RequestData"]
    assert processed["data"]["baseData"]["name"] == "inbound_process_task process"
    assert processed["tags"]["ai.operation.parentId"] == parent_id
    assert processed["tags"]["ai.cloud.role"] == "relay-worker"
    assert processed["data"]["baseData"]["properties"] == {
        "relay.actor": "inbound_process_task",
        "relay.retries": "0",
        "relay.dramatiq_message_id": sent.message_id,
        "relay.args": "0",
    }
    queries = [e for e in envelopes if e["data"]["baseType"] == "RemoteDependencyData"]
    assert {e["data"]["baseData"]["type"] for e in queries} == {"postgresql"}

    # The health server lives exactly as long as the worker: stop the worker alone and it goes too.
    os.kill(worker.process.pid, signal.SIGTERM)
    worker.process.wait(timeout=60)
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(worker.url + "/health/", timeout=2)
        except httpx.TransportError:
            break
        assert time.monotonic() < deadline, "worker_health.py outlived the worker"
        time.sleep(0.2)


@pytest.fixture
def worker_health(redis_url, start_script):
    def start(**extra: str):
        env = production_env(
            "worker",
            database_url=os.environ["DATABASE_URL"],
            redis_url=redis_url,
            WORKER_HEARTBEAT_GRACE_SECONDS="0",
            WORKER_HEALTH_EXIT_WITH_PARENT="false",
            **extra,
        )
        return start_script("deploy/worker_health.py", env)

    return start


def test_worker_health_answers_503_without_a_fresh_heartbeat_and_200_with_one(worker_health):
    health = worker_health(WORKER_HEARTBEAT_MAX_AGE_SECONDS="60")
    missing = health.wait_for_health(status=503, timeout=60)
    assert missing.json()["status"] == "unhealthy"
    assert missing.json()["checks"]["heartbeat"] == {"status": "missing", "last": None}

    stale_beat = datetime.now(UTC) - timedelta(minutes=10)
    cache.set("worker:heartbeat", stale_beat.isoformat(), timeout=60)
    stale = httpx.get(health.url + "/health/", timeout=5)
    assert stale.status_code == 503
    assert stale.json()["checks"]["heartbeat"]["status"] == "stale"
    assert stale.json()["checks"]["heartbeat"]["last"] == stale_beat.isoformat()

    cache.set("worker:heartbeat", datetime.now(UTC).isoformat(), timeout=60)
    fresh = httpx.get(health.url + "/health/", timeout=5)
    assert fresh.status_code == 200
    assert fresh.json()["checks"]["heartbeat"]["status"] == "up"
    assert httpx.get(health.url + "/other", timeout=5).status_code == 404


def test_worker_health_answers_503_when_the_broker_is_unreachable(worker_health):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    health = worker_health(REDIS_URL=closed)
    response = health.wait_for_health(status=503, timeout=60)
    checks = response.json()["checks"]
    assert checks["broker"]["status"] == "down"
    assert "ConnectionError" in checks["broker"]["error"]
    assert checks["heartbeat"]["status"] == "down"


def test_worker_health_says_starting_during_the_grace_period(redis_url, start_script):
    env = production_env(
        "worker",
        database_url=os.environ["DATABASE_URL"],
        redis_url=redis_url,
        WORKER_HEARTBEAT_GRACE_SECONDS="600",
        WORKER_HEALTH_EXIT_WITH_PARENT="false",
    )
    response = start_script("deploy/worker_health.py", env).wait_for_health(status=200, timeout=60)
    assert response.json()["status"] == "starting"
    assert response.json()["checks"]["heartbeat"]["status"] == "starting"
