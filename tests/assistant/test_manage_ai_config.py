from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.assistant.models import AIConfiguration

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("manage_ai_config", *args, stdout=out)
    return out.getvalue()


def test_create_list_update_and_test_a_configuration(openai_emulator, settings):
    settings.OPENAI_API_KEY = ""
    created = _run(
        "create", "--name", "openrouter", "--provider", "compatible", "--base-url", openai_emulator.openai_base_url,
        "--model", "mistral-small", "--api-key", openai_emulator.api_key, "--max-tokens", "300",
        "--temperature", "0.3", "--system-prompt", "Eres amable.", "--activate",
    )  # fmt: skip
    assert created == "Created openrouter (active)\n"

    listing = _run("list")
    assert listing == (
        f"* openrouter  provider=compatible  model=mistral-small  base_url={openai_emulator.openai_base_url}  "
        f"key=••••{openai_emulator.api_key[-4:]}\n"
    )
    assert openai_emulator.api_key not in listing

    assert _run("update", "--name", "openrouter", "--model", "mistral-large") == "Updated openrouter (active)\n"
    configuration = AIConfiguration.objects.get(name="openrouter")
    assert (configuration.model, configuration.api_key, configuration.max_tokens) == (
        "mistral-large", openai_emulator.api_key, 300
    )  # fmt: skip

    tested = _run("test")
    assert tested.startswith("OK openrouter: provider=compatible model=mistral-large latency_ms=")
    assert "prompt_tokens=6 completion_tokens=3 reply='Respuesta del modelo.'" in tested
    [request] = openai_emulator.chat_requests()
    assert request == {
        "model": "mistral-large",
        "messages": [{"role": "user", "content": "Reply with the single word OK."}],
        "max_tokens": 5,
        "temperature": 0.0,
    }


def test_the_api_key_can_come_from_the_environment(openai_emulator, monkeypatch):
    monkeypatch.setenv("RELAY_TEST_AI_KEY", "sk-from-env-0000")

    _run(
        "create",
        "--name",
        "env",
        "--provider",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--api-key-env",
        "RELAY_TEST_AI_KEY",
    )

    assert AIConfiguration.objects.get(name="env").api_key == "sk-from-env-0000"


def test_a_failing_test_reports_the_error(openai_emulator):
    openai_emulator.fail_next(401, body={"error": {"message": "bad key", "type": "invalid_request_error"}})

    with pytest.raises(CommandError, match="test failed: test: provider refused with 401"):
        _run("test")


def test_an_incomplete_configuration_is_refused_with_its_fields(db):
    with pytest.raises(CommandError, match=r"incomplete \(base_url: an OpenAI-compatible provider needs its base URL"):
        _run("create", "--name", "x", "--provider", "compatible", "--model", "m", "--api-key", "k")


def test_updating_an_unknown_configuration_fails(db):
    with pytest.raises(CommandError, match="no AI configuration named 'nope'"):
        _run("update", "--name", "nope", "--model", "m")
