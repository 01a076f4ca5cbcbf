"""The azd hooks' logic, run against a stand-in Azure CLI (the hooks' only way out of the machine)."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from .bicep import ROOT

ENV = {
    "AZURE_KEY_VAULT_NAME": "kv-abc",
    "AZURE_RESOURCE_GROUP": "rg-relay",
    "EVENTGRID_SYSTEM_TOPIC_NAME": "evgt-acs-abc",
    "WEB_HOSTNAME": "app-web-abc.azurewebsites.net",
    "ACS_NAME": "acs-abc",
    "SERVICE_WEB_NAME": "app-web-abc",
    "SERVICE_WORKER_NAME": "app-worker-abc",
    # The PostgreSQL part needs a real server and Entra: only the Key Vault part runs here.
    "POSTGRES_PASSWORDLESS": "false",
}


@pytest.fixture
def az(tmp_path):
    """A bin/ directory whose `az` is tests/deploy/fake_az.py; returns a reader of its state."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "az"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {ROOT / "tests/deploy/fake_az.py"} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "az-state.json"

    class Az:
        path = f"{bin_dir}:{os.environ['PATH']}"

        def state(self) -> dict:
            return json.loads(state.read_text())

        def seed(self, **secrets: str) -> None:
            state.write_text(json.dumps({"secrets": secrets}))

    Az.state_path = state
    return Az()


def run_hook(az, name: str, **extra: str):
    import subprocess

    env = {"PATH": az.path, "HOME": os.environ.get("HOME", "/tmp"), "FAKE_AZ_STATE": str(az.state_path), **ENV}
    env.update(extra)
    return subprocess.run(
        [sys.executable, f"infra/hooks/{name}.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_postprovision_generates_the_three_secrets_once_and_never_on_the_command_line(az):
    first = run_hook(az, "postprovision")
    assert first.returncode == 0, first.stderr
    secrets = az.state()["secrets"]
    assert set(secrets) == {"DJANGO-SECRET-KEY", "FIELD-ENCRYPTION-KEY", "ACS-EVENTGRID-SECRET"}
    from cryptography.fernet import Fernet

    Fernet(secrets["FIELD-ENCRYPTION-KEY"].encode())  # a valid key, or this raises
    command_lines = " ".join(" ".join(call) for call in az.state()["calls"])
    assert not any(value in command_lines for value in secrets.values())

    second = run_hook(az, "postprovision")
    assert second.returncode == 0, second.stderr
    assert az.state()["secrets"] == secrets
    assert second.stdout.count("present, kept") == 3
    assert sum(call[:3] == ["keyvault", "secret", "set"] for call in az.state()["calls"]) == 3


def test_postdeploy_without_a_channel_prints_how_to_connect_it_and_subscribes_nothing(az):
    az.seed(**{"ACS-EVENTGRID-SECRET": "s3cret"})
    result = run_hook(az, "postdeploy")
    assert result.returncode == 0, result.stderr
    assert "Advanced Messaging -> Channels" in result.stdout
    assert "azd env set ACS_CHANNEL_REGISTRATION_ID <channel-id>" in result.stdout
    assert "az webapp config appsettings set -g rg-relay -n app-web-abc" in result.stdout
    assert az.state().get("calls", []) == []  # not even a lookup


def test_postdeploy_creates_the_subscription_then_updates_it_with_the_newest_secret(az):
    az.seed(**{"ACS-EVENTGRID-SECRET": "first-secret"})
    channel = {"ACS_CHANNEL_REGISTRATION_ID": "11111111-2222-3333-4444-555555555555"}
    created = run_hook(az, "postdeploy", **channel)
    assert created.returncode == 0, created.stderr
    assert az.state()["subscriptions"] == {
        "relay-whatsapp-webhook": {
            "verb": "create",
            "endpoint": "https://app-web-abc.azurewebsites.net/api/v1/whatsapp/webhook/?code=first-secret",
            "included": [
                "Microsoft.Communication.AdvancedMessageReceived",
                "Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated",
            ],
        }
    }
    [create] = [call for call in az.state()["calls"] if call[3:4] == ["create"]]
    assert create[create.index("--endpoint-type") + 1] == "webhook"
    assert create[create.index("--event-delivery-schema") + 1] == "eventgridschema"

    # Rotation: Key Vault holds "new,old"; the subscription moves to the new one, in place.
    state = az.state()
    state["secrets"]["ACS-EVENTGRID-SECRET"] = "new+secret/1,first-secret"
    az.state_path.write_text(json.dumps(state))
    updated = run_hook(az, "postdeploy", **channel)
    assert updated.returncode == 0, updated.stderr
    subscription = az.state()["subscriptions"]["relay-whatsapp-webhook"]
    assert subscription["verb"] == "update"
    assert subscription["endpoint"].endswith("/api/v1/whatsapp/webhook/?code=new%2Bsecret%2F1")
    assert "subscription relay-whatsapp-webhook: updated" in updated.stdout
