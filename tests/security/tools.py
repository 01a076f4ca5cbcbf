"""The static security checks behind `make check`, also run by tests/security/test_static_checks.py.

    python -m tests.security.tools bandit     # no high-severity finding in apps/ and config/
    python -m tests.security.tools deploy     # manage.py check --deploy --fail-level WARNING, production settings
    python -m tests.security.tools pip-audit  # known vulnerabilities in requirements.txt

pip-audit asks a vulnerability database on the network (PyPI's per-release JSON, or OSV). When neither answers
— as on machines whose only outside access is a package mirror — nothing has been audited, and saying "no known
vulnerabilities" would be a lie. So an unreachable database fails the check, with a message saying so, unless
`PIP_AUDIT_UNREACHABLE=warn` is set; then it prints a loud warning and passes. CI on such a machine sets
`warn`: the warning stays in the log, and a machine with internet access runs the real audit with the default.
A known vulnerability that does not affect Relay is accepted only through tests/security/pip_audit_ignore.txt,
one ID per line with the reason beside it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
IGNORE_FILE = Path(__file__).with_name("pip_audit_ignore.txt")
BANDIT_PATHS = ("apps", "config")


# --- bandit ----------------------------------------------------------------------------------------
def bandit_findings(*, paths: tuple[str, ...] = BANDIT_PATHS, severity: str = "high") -> list[dict]:
    """Bandit's findings at `severity` or above (each a dict from its JSON report). Raises on a bandit crash."""
    completed = subprocess.run(
        [str(BIN / "bandit"), "-r", *paths, "-f", "json", "-q", f"--severity-level={severity}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if completed.returncode not in (0, 1):
        raise RuntimeError(f"bandit failed ({completed.returncode}): {completed.stderr[-2000:]}")
    report = json.loads(completed.stdout)
    if report.get("errors"):
        raise RuntimeError(f"bandit could not scan: {report['errors']}")
    return report["results"]


def bandit_main() -> int:
    findings = bandit_findings()
    for finding in findings:
        print(
            f"{finding['filename']}:{finding['line_number']}: {finding['test_id']} "
            f"[{finding['issue_severity']}/{finding['issue_confidence']}] {finding['issue_text']}"
        )
    print(f"bandit: {len(findings)} high-severity finding(s) in {', '.join(BANDIT_PATHS)}")
    return 1 if findings else 0


# --- manage.py check --deploy ---------------------------------------------------------------------
def production_environment() -> dict[str, str]:
    """The environment of a production deployment: DEBUG off, fresh secrets, a real database and Redis."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "ACS_", "TWILIO_", "META_", "SANDBOX_", "SKIP_WEBHOOK"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="relay.example.com",
        FIELD_ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay"),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    return environment


def deploy_check() -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def deploy_main() -> int:
    completed = deploy_check()
    sys.stdout.write(completed.stdout)
    sys.stderr.write(completed.stderr)
    return completed.returncode


# --- pip-audit ------------------------------------------------------------------------------------
@dataclass
class AuditResult:
    # "clean" | "vulnerable" | "unreachable" (no database answered for at least one requirement)
    status: str
    audited: int = 0
    unaudited: list[str] = field(default_factory=list)
    vulnerabilities: list[str] = field(default_factory=list)
    service: str = ""
    detail: str = ""


def ignored_vulnerabilities() -> list[str]:
    if not IGNORE_FILE.exists():
        return []
    ids = []
    for line in IGNORE_FILE.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            ids.append(entry)
    return ids


def pip_audit_once(*, requirements: Path, service: str) -> AuditResult:
    ignore = [argument for vuln in ignored_vulnerabilities() for argument in ("--ignore-vuln", vuln)]
    with tempfile.TemporaryDirectory() as directory:
        report_path = Path(directory) / "audit.json"
        completed = subprocess.run(
            [
                str(BIN / "pip-audit"),
                "-r",
                str(requirements),
                "--vulnerability-service",
                service,
                "--progress-spinner",
                "off",
                "--timeout",
                "15",
                "-f",
                "json",
                "-o",
                str(report_path),
                *ignore,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if not report_path.exists():
            return AuditResult("unreachable", service=service, detail=completed.stderr[-1500:])
        report = json.loads(report_path.read_text())
    dependencies = report.get("dependencies", [])
    unaudited = [
        f"{dep['name']}=={dep['version']}" if dep.get("version") else dep["name"]
        for dep in dependencies
        if "skip_reason" in dep
    ]
    vulnerabilities = [
        f"{dep['name']}=={dep['version']}: {vuln['id']} (fixed in {', '.join(vuln.get('fix_versions') or ['-'])})"
        for dep in dependencies
        for vuln in dep.get("vulns", [])
    ]
    audited = len(dependencies) - len(unaudited)
    if vulnerabilities:
        status = "vulnerable"
    elif unaudited or not dependencies:
        status = "unreachable"
    else:
        status = "clean"
    return AuditResult(status, audited, unaudited, vulnerabilities, service, completed.stderr[-1500:])


def pip_audit(*, requirements: Path = ROOT / "requirements.txt") -> AuditResult:
    """Audit with PyPI's database, then OSV if PyPI could not answer for every requirement."""
    result = pip_audit_once(requirements=requirements, service="pypi")
    if result.status == "unreachable":
        fallback = pip_audit_once(requirements=requirements, service="osv")
        if fallback.status != "unreachable" or fallback.audited > result.audited:
            return fallback
    return result


def pip_audit_main() -> int:
    result = pip_audit()
    mode = os.environ.get("PIP_AUDIT_UNREACHABLE", "fail").lower()
    if result.status == "vulnerable":
        print("pip-audit: known vulnerabilities in requirements.txt:")
        for line in result.vulnerabilities:
            print(f"  {line}")
        print(f"Upgrade the pin, or justify the ID in {IGNORE_FILE.relative_to(ROOT)}.")
        return 1
    if result.status == "clean":
        print(f"pip-audit ({result.service}): {result.audited} packages audited, no known vulnerabilities")
        return 0
    banner = "=" * 100
    print(banner)
    print(
        f"pip-audit could NOT reach a vulnerability database (PyPI per-release JSON, OSV): "
        f"{len(result.unaudited)} of {result.audited + len(result.unaudited)} packages were NOT audited."
    )
    print("This is not a clean result. Run `make check` on a machine with internet access to audit.")
    if result.unaudited:
        print("Not audited: " + ", ".join(result.unaudited[:20]) + (" …" if len(result.unaudited) > 20 else ""))
    if mode == "warn":
        print("PIP_AUDIT_UNREACHABLE=warn: continuing without the audit.")
        print(banner)
        return 0
    print("Failing. Set PIP_AUDIT_UNREACHABLE=warn to continue without the audit (CI without internet does).")
    print(banner)
    return 2


def main(argv: list[str]) -> int:
    commands = {"bandit": bandit_main, "deploy": deploy_main, "pip-audit": pip_audit_main}
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: python -m tests.security.tools {{{'|'.join(commands)}}}", file=sys.stderr)
        return 64
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
