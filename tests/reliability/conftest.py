"""The real processes of a deployment, for fault tests: gunicorn serving config.wsgi, `manage.py rundramatiq`,
a private redis-server — all pointed at the test database and at the emulators running in this process.

Subprocesses see only committed data, so every test here uses `django_db(transaction=True)`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from django.db import connection

from tests.emulators import acs_events, meta, twilio
from tests.interactions.conftest import demo_templates, drain  # noqa: F401  (shared fixtures)
from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
EVENT_SID = "HX" + "e" * 32
RECEIVED_SID = "HX" + "f" * 32


def killed_clients_settled(timeout: float = 10) -> None:
    """Wait until no other session of the test database is running a statement or holding a transaction.

    A statement a killed worker had already sent still runs to its end, and an autocommit UPDATE commits, after
    the worker is gone: rows read before that can be one step behind. (The session notices its client is gone
    when it tries to answer.)
    """

    def settled() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
            )
            return cursor.fetchone()[0] == 0

    wait_until(settled, timeout=timeout, interval=0.05, what="the killed worker's statements finished")


def database_url() -> str:
    """The pytest-django test database (test_<name of DATABASE_URL>, e.g. test_relay in CI), as a URL."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: str

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")[-4000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is not None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.popen.wait(timeout=10)


@dataclass
class Stack:
    """Factory for the processes of one test; everything it started is stopped at teardown."""

    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> Process:
        log = tempfile.NamedTemporaryFile(prefix=f"relay-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        popen = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        process = Process(name, popen, log.name)
        self.processes.append(process)
        return process

    def gunicorn(self, *, workers: int = 2, threads: int = 8, **env: str) -> tuple[Process, str]:
        port = free_port()
        process = self._spawn(
            "gunicorn",
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(threads),
                "--timeout",
                "60",
            ],
            {**self.env, **env},
        )
        base_url = f"http://127.0.0.1:{port}"

        def answering():
            if process.popen.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{process.log()}")
            try:
                return httpx.get(f"{base_url}/health/", timeout=2).status_code in (200, 503)
            except httpx.HTTPError:
                return False

        wait_until(answering, timeout=30, what="gunicorn answering")
        return process, base_url

    def worker(self, *, processes: int = 1, threads: int = 4, **env: str) -> Process:
        return self._spawn(
            "worker",
            [sys.executable, "manage.py", "rundramatiq", "--processes", str(processes), "--threads", str(threads)],
            {**self.env, **env},
        )

    def redis(self) -> RedisServer:
        server = RedisServer(self)
        server.start()
        return server

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()


class RedisServer:
    """A private redis-server on a free port (never the shared one), stoppable and restartable on that port."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.port = free_port()
        self.process: Process | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = self.stack._spawn(
            "redis",
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            dict(os.environ),
        )

        def up():
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            return False

        wait_until(up, timeout=10, what="redis-server up")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@pytest.fixture(params=["deferred", "direct"])
def ingest_mode(request) -> str:
    """Every test of Relay's processes runs with both ways of ingesting a webhook delivery: deferred (the
    production default: the delivery row, then the worker's pump) and direct (the webhook stores the message)."""
    return request.param


@pytest.fixture
def stack_env(acs_emulator, twilio_emulator, meta_emulator, ingest_mode) -> dict[str, str]:
    """Environment of Relay's processes: the test database and Redis db, every channel on its emulator, and a
    fast sweeper so that recovery happens within a test's time."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ACS_", "TWILIO_", "META_"))}
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "DRAMATIQ_NAMESPACE": os.environ.get("DRAMATIQ_NAMESPACE", "relay-test"),
        "LOG_LEVEL": "WARNING",
        "ACS_ENABLED": "true",
        "ACS_CONNECTION_STRING": acs_emulator.connection_string,
        "ACS_CHANNEL_REGISTRATION_ID": acs_emulator.channel_id,
        "ACS_EVENTGRID_SECRET": acs_events.WEBHOOK_SECRET,
        "TWILIO_ENABLED": "true",
        "TWILIO_ACCOUNT_SID": twilio.ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": twilio.AUTH_TOKEN,
        "TWILIO_WHATSAPP_NUMBER": twilio.WHATSAPP_NUMBER,
        "TWILIO_API_BASE_URL": twilio_emulator.base_url,
        "META_ENABLED": "true",
        "META_ACCESS_TOKEN": meta.ACCESS_TOKEN,
        "META_PHONE_NUMBER_ID": meta.PHONE_NUMBER_ID,
        "META_APP_SECRET": meta.APP_SECRET,
        "META_VERIFY_TOKEN": meta.VERIFY_TOKEN,
        "META_GRAPH_BASE_URL": meta_emulator.graph_base_url,
        "RATE_LIMIT_MAX_REQUESTS": "1000",
        "SWEEPER_STALE_SECONDS": "5",
        "SWEEPER_INTERVAL_SECONDS": "1",
        "OUTBOUND_RETRY_BACKOFF_MS": "200",
        "TASK_MIN_BACKOFF_MS": "200",
        "CHANNEL_HTTP_TIMEOUT_SECONDS": "10",
        "WEBHOOK_DEFERRED_INGEST": "true" if ingest_mode == "deferred" else "false",
        "DELIVERY_PUMP_STANDBY_SECONDS": "1",
    }


@pytest.fixture
def stack(stack_env, demo_templates, broker) -> Iterator[Stack]:  # noqa: F811
    """Processes started by the test; the demo templates (with Twilio Content SIDs) are committed first."""
    demo_templates.event_info.twilio_content_sid = EVENT_SID
    demo_templates.event_info.save()
    demo_templates.request_received.twilio_content_sid = RECEIVED_SID
    demo_templates.request_received.save()
    running = Stack(env=stack_env)
    try:
        yield running
    finally:
        running.close()
