"""CI enforces the static security checks of `make check` (pip-audit needs the network; it stays in make check)."""

from __future__ import annotations

import pytest

from tests.security.tools import bandit_findings, deploy_check


@pytest.mark.slow
def test_bandit_finds_no_high_severity_issue_in_apps_or_config():
    findings = bandit_findings()

    assert [f"{f['filename']}:{f['line_number']} {f['test_id']} {f['issue_text']}" for f in findings] == []


@pytest.mark.slow
def test_check_deploy_is_clean_under_production_settings():
    completed = deploy_check()

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "System check identified no issues" in completed.stdout
