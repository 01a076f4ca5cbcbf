"""Production-like environments for the deploy tests, built from the Bicep app settings, and start-script
processes run in their own process group."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from tests.support import free_port

from .bicep import ROOT, site_app_settings

VENV_BIN = Path(sys.executable).parent


def _fake_secret(name: str) -> str:
    """A realistic value for each Key Vault secret, the way postprovision generates them."""
    if name == "FIELD_ENCRYPTION_KEY":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    if name == "ACS_CONNECTION_STRING":
        key = base64.b64encode(os.urandom(32)).decode()
        return f"endpoint=https://acs-deploytest.communication.azure.com/;accesskey={key}"
    return base64.urlsafe_b64encode(os.urandom(40)).decode().rstrip("=")


def production_env(service: str, *, database_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    """Exactly the app settings the Bicep gives `service`, with Key Vault references and deployment-time
    expressions replaced by local stand-ins, plus what App Service itself sets. Nothing from this process's
    environment leaks in except PATH and HOME."""
    env = {"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    hostname = f"app-{service}-deploytest.azurewebsites.net"
    stand_ins = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ACS_CHANNEL_REGISTRATION_ID": str(uuid.uuid4()),
        "ACS_ENABLED": "true",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "",
        "DJANGO_ALLOWED_HOSTS": hostname,
        "PUBLIC_BASE_URL": f"https://{hostname}",
        "DATABASE_GRANT_ROLES": "",
    }
    for name, expression in site_app_settings(service).items():
        if "${kvRef}" in expression:
            env[name] = redis_url if name == "REDIS_URL" else _fake_secret(name)
        elif name in stand_ins:
            env[name] = stand_ins[name]
        elif expression.startswith("'") and expression.endswith("'") and "${" not in expression:
            env[name] = expression[1:-1]
        else:
            env[name] = ""  # deployment-time expression with no local meaning (Azure OpenAI when disabled)
    env["WEBSITE_HOSTNAME"] = hostname  # set by App Service itself
    env.update(overrides)
    return env


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def deploy_database_url() -> Iterator[str]:
    """A database of its own (<test db name>_deploy), created empty so the start scripts really migrate."""
    base_url = os.environ["DATABASE_URL"]
    name = (urlsplit(base_url).path.lstrip("/") or "relay") + "_deploy"
    admin_url = _with_database(base_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(base_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["REDIS_URL"]


class StartedScript:
    def __init__(self, process: subprocess.Popen, port: int, log: Path):
        self.process, self.port, self.log = process, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_health(
        self, *, status: int = 200, timeout: float = 60.0, path: str = "/health/", headers: dict | None = None
    ) -> httpx.Response:
        """Poll until the health endpoint answers `status`; fail with the process's output otherwise."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"process exited with {self.process.returncode}:\n{self.output()[-4000:]}")
            try:
                last = httpx.get(self.url + path, timeout=5, headers=headers)
                if last.status_code == status:
                    return last
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        pytest.fail(f"no {status} from {path} in {timeout}s (last: {last and last.text}):\n{self.output()[-4000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode


@pytest.fixture
def start_script(tmp_path) -> Iterator:
    """start_script("deploy/web.sh", env) runs it (bash for .sh, this Python otherwise) from the repository
    root in a new process group on a free port; every group is terminated at teardown."""
    started: list[StartedScript] = []

    def start(script: str, env: dict[str, str]) -> StartedScript:
        port = free_port()
        log = tmp_path / f"{Path(script).stem}-{len(started)}.log"
        command = ["bash", script] if script.endswith(".sh") else [sys.executable, script]
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "PORT": str(port), "PYTHON": sys.executable},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle = StartedScript(process, port, log)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
