"""Processes and environment for the benchmarks: a migrated database, gunicorn, a worker, wrk.

Benchmarks run against their own database (BENCH_DATABASE_URL, default relay_bench) and Redis db
(BENCH_REDIS_URL, default db 14), so they never touch development or test data.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
BIN = Path(sys.executable).parent

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

# The webhook secrets of tests/emulators, so the request builders there sign for this server.
sys.path.insert(0, str(ROOT))
from tests.emulators import acs_events, meta, twilio  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> dict:
    """What the figures were measured on."""

    def command(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    meminfo = Path("/proc/meminfo").read_text().splitlines() if Path("/proc/meminfo").exists() else []
    memory = next((line.split(":", 1)[1].strip() for line in meminfo if line.startswith("MemTotal")), "")
    return {
        "nproc": command("nproc"),
        "lscpu": command("lscpu").splitlines()[:10],
        "memory": memory,
        "python": platform.python_version(),
        "postgres": command("psql", "--version"),
        "redis": command("redis-server", "--version"),
        "wrk": command("wrk", "--version").splitlines()[0] if shutil.which("wrk") else "",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }


def environment(*, database_url: str = DATABASE_URL, redis_url: str = REDIS_URL, **extra: str) -> dict[str, str]:
    """Production settings (DEBUG off, fresh secrets) with every channel enabled and pointed at `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "ACS_", "TWILIO_", "META_", "OPENAI_", "SANDBOX_", "RELAY_"))
    }
    unreachable = "http://127.0.0.1:9"
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DRAMATIQ_NAMESPACE="relay-bench",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        ACS_ENABLED="true",
        ACS_CONNECTION_STRING=f"endpoint={unreachable}/;accesskey={base64.b64encode(b'k' * 32).decode()}",
        ACS_CHANNEL_REGISTRATION_ID=acs_events.CHANNEL_ID,
        ACS_EVENTGRID_SECRET=acs_events.WEBHOOK_SECRET,
        TWILIO_ENABLED="true",
        TWILIO_ACCOUNT_SID=twilio.ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=twilio.AUTH_TOKEN,
        TWILIO_WHATSAPP_NUMBER=twilio.WHATSAPP_NUMBER,
        TWILIO_API_BASE_URL=unreachable,
        META_ENABLED="true",
        META_ACCESS_TOKEN=meta.ACCESS_TOKEN,
        META_PHONE_NUMBER_ID=meta.PHONE_NUMBER_ID,
        META_APP_SECRET=meta.APP_SECRET,
        META_VERIFY_TOKEN=meta.VERIFY_TOKEN,
        META_GRAPH_BASE_URL=unreachable,
        # Distinct senders per message: the per-contact rate limit must not shape a throughput figure.
        RATE_LIMIT_MAX_REQUESTS="100000",
    )
    env.update(extra)
    return env


def database_prepare(env: dict[str, str]) -> None:
    """Create the benchmark database if missing, migrate it, and empty Relay's tables."""
    import psycopg

    parts = urlsplit(env["DATABASE_URL"])
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    manage(env, "migrate", "--noinput", quiet=True)
    database_truncate(env)


def database_truncate(env: dict[str, str]) -> None:
    import psycopg

    from bench.baseline_table import TABLE, TABLE_DDL

    url = urlunsplit(urlsplit(env["DATABASE_URL"])._replace(scheme="postgresql"))
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(TABLE_DDL)
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND "
                "(tablename LIKE 'interactions_%%' OR tablename = %s)",
                [TABLE],
            )
        ]
        if tables:
            connection.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
    redis_flush(env)


def redis_flush(env: dict[str, str]) -> None:
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()


def manage(env: dict[str, str], *args: str, quiet: bool = False) -> str:
    completed = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if completed.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout


def gunicorn_command(port: int) -> tuple[list[str], str]:
    """gunicorn serving config.wsgi with deploy/gunicorn.conf.py when it exists, else equivalent flags."""
    config = ROOT / "deploy" / "gunicorn.conf.py"
    command = [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    if config.exists():
        return [*command, "--config", str(config)], f"deploy/gunicorn.conf.py, bound to 127.0.0.1:{port}"
    workers = os.cpu_count() or 2
    flags = ["--workers", str(workers), "--worker-class", "gthread", "--threads", "4", "--keep-alive", "5"]
    return [*command, *flags], " ".join(flags)


@contextlib.contextmanager
def gunicorn(env: dict[str, str], *, extra_env: dict[str, str] | None = None) -> Iterator[tuple[int, str]]:
    """A running gunicorn; yields (port, description of its configuration)."""
    port = free_port()
    command, description = gunicorn_command(port)
    log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        command, cwd=ROOT, env={**env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_http(port, process, log.name)
        yield port, description
    finally:
        stop(process)
        log.close()


@contextlib.contextmanager
def worker(env: dict[str, str], *, processes: int = 1, threads: int = 8) -> Iterator[subprocess.Popen]:
    log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "manage.py", "rundramatiq", "--processes", str(processes), "--threads", str(threads)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop(process, group=True)
        log.close()


def wait_for_http(port: int, process: subprocess.Popen, log_path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{Path(log_path).read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if sock.recv(12).startswith(b"HTTP/1."):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not answer on {port}:\n{Path(log_path).read_text()[-3000:]}")


def stop(process: subprocess.Popen, *, group: bool = False, timeout: float = 20.0) -> None:
    if process.poll() is not None:
        return
    if group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait()


def wrk(port: int, requests_file: Path, *, duration: int, connections: int) -> dict:
    """Closed-loop maximum throughput with wrk (one thread) over pre-signed requests; see bench/wrk_requests.lua."""
    completed = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "wrk_requests.lua"),
            f"http://127.0.0.1:{port}",
        ],
        env={**os.environ, "WRK_REQUESTS": str(requests_file)},
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    line = next((x for x in completed.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{completed.stdout}\n{completed.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    ok = raw["requests"] - raw["status_errors"]
    return {
        "requests": raw["requests"],
        "ok": ok,
        "errors": raw["status_errors"] + raw["connect_errors"] + raw["read_errors"] + raw["write_errors"],
        "timeouts": raw["timeouts"],
        "duration_s": round(seconds, 3),
        "throughput_rps": round(ok / seconds, 1),
        "latency_ms": {k: round(raw[f"{k}_us"] / 1000, 2) for k in ("p50", "p90", "p99", "max")},
        "wrapped": raw["requests"] > raw["available"],
    }


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return path


# --- CPU accounting --------------------------------------------------------------------------------------

CPU_GROUPS = {
    "worker": "dramatiq",
    "web": "gunicorn",
    "postgres": "postgres",
    "redis": "redis-server",
    "load generator + emulator": "bench.run",
}


def cpu_snapshot() -> dict:
    """CPU seconds used so far by each process of the groups (by command line), and the machine's busy/total."""
    ticks = os.sysconf("SC_CLK_TCK")
    processes: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for group, needle in CPU_GROUPS.items():
            if needle in command:
                # utime + stime, plus cutime + cstime: the CPU of children it has reaped, so a PostgreSQL backend
                # that exits between two snapshots still counts (in the postmaster's figure).
                processes[int(entry.name)] = (group, sum(int(x) for x in fields[11:15]) / ticks)
                break
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return {"processes": processes, "busy": (sum(values) - idle) / ticks, "total": sum(values) / ticks}


def cpu_report(before: dict, after: dict, *, messages: int) -> dict:
    """CPU used between two snapshots: per group (ms per message) and the machine's busy share."""
    total = after["total"] - before["total"]
    # Per process: one that started in between counts from zero. One that exited in between (a PostgreSQL
    # backend past CONN_MAX_AGE, say) reaches its parent's reaped-children figure with its whole lifetime, so
    # what it had used by `before` is taken off its group again (each group holds the parent that reaps it).
    used = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid, (group, seconds) in after["processes"].items():
        earlier = before["processes"].get(pid)
        used[group] += seconds - (earlier[1] if earlier and earlier[0] == group else 0.0)
    for pid, (group, seconds) in before["processes"].items():
        if pid not in after["processes"]:
            used[group] -= seconds
    return {
        "ms_per_message": {group: round(used[group] * 1000 / max(messages, 1), 2) for group in CPU_GROUPS},
        "machine_busy_percent": round(100 * (after["busy"] - before["busy"]) / total, 1) if total else None,
        "cores": os.cpu_count(),
    }
