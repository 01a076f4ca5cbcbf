"""azure.yaml against azd's own schema (shared/reference/schemas, beside the repository)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry
from referencing.exceptions import NoSuchResource

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT.parent / "shared" / "reference" / "schemas" / "azure.yaml.schema.json"


def _no_network(uri: str):
    # The schema links extension schemas for hosts Relay does not use; never fetch them.
    raise NoSuchResource(ref=uri)


@pytest.fixture(scope="module")
def validator():
    if not SCHEMA_PATH.exists():
        pytest.skip(f"azd schema not found at {SCHEMA_PATH} (shared/ is expected beside the repository)")
    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=Registry(retrieve=_no_network))


@pytest.fixture(scope="module")
def azure_yaml() -> dict:
    return yaml.safe_load((ROOT / "azure.yaml").read_text())


def test_azure_yaml_is_valid_against_the_azd_schema(validator, azure_yaml):
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(azure_yaml)]
    assert errors == []


def test_the_schema_check_rejects_a_service_without_host(validator, azure_yaml):
    broken = copy.deepcopy(azure_yaml)
    del broken["services"]["worker"]["host"]
    assert not validator.is_valid(broken)


def test_web_and_worker_are_python_app_service_services_from_the_repository_root(azure_yaml):
    assert azure_yaml["services"] == {
        "web": {"project": ".", "language": "py", "host": "appservice"},
        "worker": {"project": ".", "language": "py", "host": "appservice"},
    }


@pytest.mark.parametrize("hook", ["preprovision", "postprovision", "postdeploy"])
def test_each_hook_has_a_posix_and_a_windows_script_that_exist(azure_yaml, hook):
    config = azure_yaml["hooks"][hook]
    assert config["posix"]["shell"] == "sh"
    assert config["windows"]["shell"] == "pwsh"
    for platform in ("posix", "windows"):
        script = ROOT / config[platform]["run"]
        assert script.is_file(), script
        # Both wrappers run the same Python hook.
        assert hook in script.read_text()
    assert (ROOT / "infra" / "hooks" / f"{hook}.py").is_file()


def test_the_postprovision_hook_generates_a_valid_fernet_key_and_url_safe_webhook_secret():
    import importlib.util
    import re

    from cryptography.fernet import Fernet

    spec = importlib.util.spec_from_file_location("postprovision", ROOT / "infra" / "hooks" / "postprovision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.GENERATED_SECRETS) == {"DJANGO-SECRET-KEY", "FIELD-ENCRYPTION-KEY", "ACS-EVENTGRID-SECRET"}
    key = module.GENERATED_SECRETS["FIELD-ENCRYPTION-KEY"]()
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", module.GENERATED_SECRETS["ACS-EVENTGRID-SECRET"]())
    assert len(module.GENERATED_SECRETS["DJANGO-SECRET-KEY"]()) >= 50
