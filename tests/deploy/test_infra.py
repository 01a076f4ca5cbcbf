"""The Bicep in infra/: checkov clean, azd conventions, and every production setting provided."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from apps.core.startup import REQUIRED_CHANNEL_SETTINGS

from .bicep import INFRA, ROOT, module_params, site_app_settings

MAIN = (INFRA / "main.bicep").read_text()
CHECKOV_VERSION = re.search(r"^CHECKOV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
# Secrets: present in production, and only ever as Key Vault references.
SECRET_SETTINGS = {
    "DJANGO_SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "REDIS_URL",
    "ACS_CONNECTION_STRING",
    "ACS_EVENTGRID_SECRET",
}


def production_required_settings() -> set[str]:
    """What the code refuses to run without in production (DEBUG off), for the primary channel (ACS)."""
    _, acs_required = REQUIRED_CHANNEL_SETTINGS["acs"]
    return {
        *acs_required,
        "ACS_CONNECTION_STRING",
        "DJANGO_SECRET_KEY",
        "FIELD_ENCRYPTION_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_ALLOWED_HOSTS",
    }


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    stamp = ROOT / ".venv-checkov" / f".installed-checkov-{CHECKOV_VERSION}"
    if not stamp.exists():
        # A fresh clone (CI): build the isolated venv exactly as `make check-infra` does (~30-60 s).
        started = time.monotonic()
        subprocess.run(["make", "-s", "checkov-venv"], cwd=ROOT, check=True, timeout=900)
        print(f"checkov {CHECKOV_VERSION} installed in {time.monotonic() - started:.0f} s")
    result = subprocess.run(
        [str(CHECKOV), "-d", "infra", "--framework", "bicep", "--skip-download", "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.stdout, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_checkov_finds_no_failed_check_and_parses_every_bicep_file(checkov_report):
    summary = checkov_report["summary"]
    failed = [f"{c['check_id']} {c['resource']} {c['file_path']}" for c in checkov_report["results"]["failed_checks"]]
    assert failed == []
    assert summary["parsing_errors"] == 0, checkov_report["results"].get("parsing_errors")
    assert summary["passed"] > 0
    scanned = {Path(c["file_path"]).name for c in checkov_report["results"]["passed_checks"]}
    assert {"appservice.bicep", "keyvault.bicep"} <= scanned


def test_every_checkov_skip_carries_a_justification(checkov_report):
    skipped = checkov_report["results"]["skipped_checks"]
    unjustified = [c["check_id"] for c in skipped if len(c.get("check_result", {}).get("suppress_comment", "")) < 20]
    assert unjustified == []
    inline = re.findall(r"checkov:skip=(\w+):(.*)", "".join(p.read_text() for p in INFRA.rglob("*.bicep")))
    assert inline and all(len(reason.strip()) >= 20 for _, reason in inline)


def test_main_bicep_is_subscription_scoped_with_a_resource_token_and_the_azd_tags():
    assert "targetScope = 'subscription'" in MAIN
    assert "var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))" in MAIN
    assert "var tags = { 'azd-env-name': environmentName }" in MAIN
    assert re.search(r"resource rg 'Microsoft.Resources/resourceGroups@[\d-]+' = \{\n(  .*\n)*  tags: tags\n\}", MAIN)
    assert module_params("web")["tags"] == "union(tags, { 'azd-service-name': 'web' })"
    assert module_params("worker")["tags"] == "union(tags, { 'azd-service-name': 'worker' })"


def test_outputs_are_upper_snake_and_include_what_the_hooks_read():
    outputs = dict(re.findall(r"^output (\w+) (\w+) =", MAIN, re.MULTILINE))
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in outputs)
    hooks = "".join(p.read_text() for p in (INFRA / "hooks").glob("*.py"))
    read_by_hooks = set(re.findall(r'env\("([A-Z_]+)"', hooks)) - {"ACS_CHANNEL_REGISTRATION_ID"}
    azd_builtin = {"AZURE_PRINCIPAL_NAME"}
    assert read_by_hooks - azd_builtin <= set(outputs), read_by_hooks - set(outputs)
    assert {
        "AZURE_LOCATION",
        "AZURE_RESOURCE_GROUP",
        "WEB_URI",
        "SERVICE_WEB_NAME",
        "SERVICE_WORKER_NAME",
        "AZURE_KEY_VAULT_NAME",
        "POSTGRES_HOST",
        "ACS_ENDPOINT",
        "EVENTGRID_SYSTEM_TOPIC_NAME",
    } <= set(outputs)


def test_no_output_and_no_parameter_file_value_is_a_secret():
    for path in INFRA.rglob("*.bicep"):
        for line in re.findall(r"^output .*$", path.read_text(), re.MULTILINE):
            # (Application Insights' connection string only lets a process send telemetry: not a secret.)
            assert not re.search(r"listKeys|primaryKey|primaryConnectionString|password|secret", line, re.I), line
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"
    assert parameters["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert parameters["openAiEnabled"]["value"] == "${OPENAI_ENABLED=false}"
    assert parameters["acsChannelRegistrationId"]["value"] == "${ACS_CHANNEL_REGISTRATION_ID=}"


@pytest.mark.parametrize("service", ["web", "worker"])
def test_every_setting_production_requires_is_provided_to_the_site(service):
    settings = site_app_settings(service)
    missing = production_required_settings() - set(settings)
    assert missing == set()


@pytest.mark.parametrize("service", ["web", "worker"])
def test_secrets_reach_the_sites_only_as_key_vault_references(service):
    settings = site_app_settings(service)
    assert "var kvRef = '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName='" in MAIN
    for name in SECRET_SETTINGS:
        assert settings[name].startswith("'${kvRef}") and settings[name].endswith(")'"), (name, settings[name])
    assert settings["DJANGO_DEBUG"] == "'false'"
    assert settings["SCM_DO_BUILD_DURING_DEPLOYMENT"] == "'true'"
    # Passwordless: the database URL names the site's own identity and carries no password.
    assert re.fullmatch(
        rf"'postgres://\$\{{{service}AppName\}}@[^:]+:5432/[^?]+\?sslmode=require'", settings["DATABASE_URL"]
    )


@pytest.mark.parametrize(("service", "script"), [("web", "deploy/web.sh"), ("worker", "deploy/worker.sh")])
def test_each_site_starts_its_script_and_is_health_checked(service, script):
    params = module_params(service)
    assert params["appCommandLine"] == f"'bash {script}'"
    assert params["healthCheckPath"] == "'/health/'"
    assert (ROOT / script).is_file()


def test_sites_are_https_only_tls12_ftp_off_always_on_with_a_managed_identity():
    site = (INFRA / "modules" / "appservice.bicep").read_text()
    for expected in (
        "httpsOnly: true",
        "minTlsVersion: '1.2'",
        "ftpsState: 'Disabled'",
        "alwaysOn: true",
        "type: 'SystemAssigned'",
        "linuxFxVersion: 'PYTHON|${pythonVersion}'",
        "healthCheckPath: healthCheckPath",
        "4633458b-17de-408a-b874-0445c86b69e6",
    ):
        assert expected in site, expected
    assert "param pythonVersion string = '3.11'" in site


def test_data_services_are_tls_only_non_clustered_and_passwordless():
    postgres = (INFRA / "modules" / "postgres.bicep").read_text()
    assert "version: '16'" in postgres
    assert "activeDirectoryAuth: 'Enabled'" in postgres and "passwordAuth: 'Disabled'" in postgres
    assert "name: 'require_secure_transport'" in postgres and "value: 'on'" in postgres
    assert re.findall(r"startIpAddress: '([\d.]+)'", postgres) == ["0.0.0.0"]
    redis = (INFRA / "modules" / "redis.bicep").read_text()
    assert "enableNonSslPort: false" in redis and "minimumTlsVersion: '1.2'" in redis
    assert "@allowed(['Basic', 'Standard'])" in redis  # never Premium clustering / Enterprise
    assert (
        "'rediss://:${redis.listKeys().primaryKey}@${redis.properties.hostName}:${redis.properties.sslPort}/0'" in redis
    )
    vault = (INFRA / "modules" / "keyvault.bicep").read_text()
    for expected in (
        "enableRbacAuthorization: true",
        "enableSoftDelete: true",
        "enablePurgeProtection: true",
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    ):
        assert expected in vault


def test_communication_services_and_its_event_grid_topic_are_global_and_the_subscription_is_left_to_postdeploy():
    acs = (INFRA / "modules" / "communication.bicep").read_text()
    assert "topicType: 'Microsoft.Communication.CommunicationServices'" in acs
    assert acs.count("location: 'global'") == 2
    assert "dataLocation: dataLocation" in acs
    assert "eventSubscriptions" not in acs  # Event Grid would validate an endpoint that has no code yet
    assert "name: 'ACS-CONNECTION-STRING'" in acs


def test_azure_openai_exists_only_behind_the_parameter_with_the_openai_user_role():
    assert "param openAiEnabled bool = false" in MAIN
    assert "module openAi 'modules/openai.bicep' = if (openAiEnabled)" in MAIN
    openai = (INFRA / "modules" / "openai.bicep").read_text()
    assert "kind: 'OpenAI'" in openai and "disableLocalAuth: true" in openai
    assert "Microsoft.CognitiveServices/accounts/deployments@" in openai
    assert "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd" in (INFRA / "modules" / "appservice.bicep").read_text()
