"""Fail closed: `manage.py check` in a fresh process refuses a production configuration that would accept
unsigned webhooks, and names what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHANNEL_VARS = (
    "ACS_ENABLED",
    "ACS_CONNECTION_STRING",
    "ACS_ENDPOINT",
    "ACS_CHANNEL_REGISTRATION_ID",
    "ACS_EVENTGRID_SECRET",
    "TWILIO_ENABLED",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_WHATSAPP_NUMBER",
    "META_ENABLED",
    "META_ACCESS_TOKEN",
    "META_PHONE_NUMBER_ID",
    "META_APP_SECRET",
    "META_VERIFY_TOKEN",
    "SKIP_WEBHOOK_SIGNATURE_VERIFICATION",
    "DJANGO_DEBUG",
)
TWILIO_OK = {
    "TWILIO_ENABLED": "true",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_WHATSAPP_NUMBER": "+14155238886",
}
META_OK = {
    "META_ENABLED": "true",
    "META_ACCESS_TOKEN": "EAAG-token",
    "META_PHONE_NUMBER_ID": "106540352242922",
    "META_APP_SECRET": "app-secret",
    "META_VERIFY_TOKEN": "verify-token",
}


def _check(**env: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key not in CHANNEL_VARS}
    base["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    base["DJANGO_DEBUG"] = "false"
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_complete_twilio_and_meta_configuration_starts():
    result = _check(**TWILIO_OK, **META_OK)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {**TWILIO_OK, "TWILIO_AUTH_TOKEN": ""},
            "channel twilio is enabled but TWILIO_AUTH_TOKEN is not set",
        ),
        (
            {"TWILIO_ENABLED": "true"},
            "channel twilio is enabled but TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_NUMBER is not set",
        ),
        (
            {**META_OK, "META_APP_SECRET": ""},
            "channel meta is enabled but META_APP_SECRET is not set",
        ),
        (
            {**META_OK, "META_VERIFY_TOKEN": "", "META_APP_SECRET": ""},
            "channel meta is enabled but META_APP_SECRET, META_VERIFY_TOKEN is not set",
        ),
    ],
)
def test_enabled_channel_without_its_secret_refuses_to_start(env, message):
    result = _check(**env)
    assert result.returncode != 0
    assert "Relay refuses to start" in result.stderr
    assert message in result.stderr


def test_twilio_enabled_by_its_account_sid_alone_refuses_to_start():
    """TWILIO_ENABLED defaults to on when a SID is set, so a half-configured deployment cannot slip through."""
    result = _check(TWILIO_ACCOUNT_SID="AC" + "1" * 32)
    assert result.returncode != 0
    assert "channel twilio is enabled but TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_NUMBER is not set" in result.stderr


def test_skipping_signature_verification_is_refused_without_debug():
    result = _check(**TWILIO_OK, SKIP_WEBHOOK_SIGNATURE_VERIFICATION="true")
    assert result.returncode != 0
    assert "SKIP_WEBHOOK_SIGNATURE_VERIFICATION is refused unless DJANGO_DEBUG is on" in result.stderr


def test_debug_allows_skipping_signatures_and_missing_secrets_for_local_work():
    result = _check(DJANGO_DEBUG="true", TWILIO_ENABLED="true", SKIP_WEBHOOK_SIGNATURE_VERIFICATION="true")
    assert result.returncode == 0, result.stderr
