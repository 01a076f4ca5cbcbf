from __future__ import annotations

import pytest
from django.db import connection

from apps.assistant.models import AIConfiguration
from apps.assistant.services import (
    AITransientError,
    ai_answer_generate,
    ai_configuration_create,
    ai_intent_classify,
)
from apps.core.crypto import secret_decrypt
from apps.core.exceptions import ApplicationError, ConflictError
from tests.emulators.openai import AZURE_API_KEY, ENTRA_TOKEN, IDENTITY_HEADER, IDENTITY_PATH, header

pytestmark = pytest.mark.django_db

INTENTS = [("donativos", "Cómo donar u ofrendar."), ("eventos", "Fechas de eventos.")]


def _azure(emulator, **extra):
    return ai_configuration_create(
        name="azure",
        provider="azure_openai",
        base_url=emulator.base_url,
        api_version="2024-10-21",
        deployment="chat-deploy",
        model="gpt-4o-mini",
        api_key=AZURE_API_KEY,
        activate=True,
        **extra,
    )


def test_azure_openai_calls_the_deployment_url_with_the_api_key_header(openai_emulator, church_knowledge, settings):
    settings.OPENAI_API_KEY = ""
    _azure(openai_emulator)
    openai_emulator.reply_with("Domingos a las 10:00.")

    answer = ai_answer_generate(contact_key="+34600000201", text="¿A qué hora es el culto?")

    assert answer.text == "Domingos a las 10:00."
    assert answer.provider == "azure_openai"
    [request] = openai_emulator.requests
    assert request.path == "/openai/deployments/chat-deploy/chat/completions"
    assert request.query["api-version"] == ["2024-10-21"]
    assert header(request, "api-key") == AZURE_API_KEY
    assert header(request, "Authorization") is None
    assert request.json()["model"] == "chat-deploy"


def test_azure_with_a_wrong_key_is_refused_permanently(openai_emulator, church_knowledge):
    configuration = _azure(openai_emulator)
    configuration.api_key = "wrong"
    configuration.save()

    from apps.assistant.services import AIPermanentError

    with pytest.raises(AIPermanentError) as caught:
        ai_answer_generate(contact_key="+34600000202", text="¿A qué hora es el culto?")
    assert caught.value.status == 401


def test_an_active_configuration_wins_over_the_settings(openai_emulator, church_knowledge):
    ai_configuration_create(
        name="openrouter",
        provider="compatible",
        base_url=openai_emulator.openai_base_url,
        model="meta-llama/llama-3-8b",
        api_key=openai_emulator.api_key,
        max_tokens=123,
        temperature=0.7,
        system_prompt="Eres el asistente de la Iglesia VEA.",
        activate=True,
    )

    ai_answer_generate(contact_key="+34600000203", text="¿A qué hora es el culto?")

    [request] = openai_emulator.chat_requests()
    assert request["model"] == "meta-llama/llama-3-8b"
    assert request["max_tokens"] == 123
    assert request["temperature"] == 0.7
    assert request["messages"][0]["content"].startswith("Eres el asistente de la Iglesia VEA.\n\n")


def test_the_database_never_holds_the_plaintext_key(openai_emulator):
    configuration = ai_configuration_create(
        name="openai", provider="openai", model="gpt-4o-mini", api_key="sk-live-very-secret-123456"
    )

    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM assistant_aiconfiguration WHERE id = %s", [configuration.pk])
        [(stored,)] = cursor.fetchall()
    assert "sk-live-very-secret-123456" not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    assert secret_decrypt(stored) == "sk-live-very-secret-123456"
    assert AIConfiguration.objects.get(pk=configuration.pk).api_key == "sk-live-very-secret-123456"


def test_activating_a_configuration_deactivates_the_previous_one(openai_emulator):
    first = ai_configuration_create(name="a", provider="openai", model="m", api_key="k1", activate=True)
    second = ai_configuration_create(name="b", provider="openai", model="m", api_key="k2", activate=True)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.active, second.active) == (False, True)


def test_two_active_configurations_are_refused_by_the_database(openai_emulator):
    from django.db import IntegrityError, transaction

    ai_configuration_create(name="a", provider="openai", model="m", api_key="k1", activate=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        AIConfiguration.objects.create(name="b", provider="openai", model="m", api_key="k2", active=True)


def test_a_configuration_with_the_same_name_is_a_conflict(openai_emulator):
    ai_configuration_create(name="a", provider="openai", model="m", api_key="k1")
    with pytest.raises(ConflictError):
        ai_configuration_create(name="a", provider="openai", model="m", api_key="k2")


def test_an_incomplete_configuration_is_refused_with_the_fields(openai_emulator):
    with pytest.raises(ApplicationError) as caught:
        ai_configuration_create(name="x", provider="azure_openai", model="")
    assert caught.value.extra == {
        "fields": {
            "base_url": "Azure OpenAI needs the resource endpoint (https://<resource>.openai.azure.com)",
            "deployment": "Azure OpenAI needs the deployment name",
            "api_key": "an API key is required unless Entra ID is used",
        }
    }


def test_intent_classification_picks_a_known_intent_with_its_entity(openai_emulator):
    openai_emulator.reply_with('{"intent": "donativos", "confidence": 0.92, "entity": "tarjeta"}')

    choice = ai_intent_classify(text="quiero dar con tarjeta", intents=INTENTS)

    assert choice is not None
    assert (choice.name, choice.confidence, choice.entity, choice.provider, choice.model) == (
        "donativos", 0.92, "tarjeta", "compatible", "gpt-emulated"
    )  # fmt: skip
    assert choice.completion_tokens == 6
    [request] = openai_emulator.chat_requests()
    assert request["max_tokens"] == 80
    assert request["temperature"] == 0.0
    assert "- donativos: Cómo donar u ofrendar.\n- eventos: Fechas de eventos." in request["messages"][0]["content"]
    assert request["messages"][1] == {"role": "user", "content": "quiero dar con tarjeta"}


@pytest.mark.parametrize(
    "reply", ['{"intent": "none", "confidence": 0.9}', '{"intent": "viajes", "confidence": 0.9}', "no sé"]
)
def test_intent_classification_returns_none_when_no_known_intent_fits(openai_emulator, reply):
    openai_emulator.reply_with(reply)

    assert ai_intent_classify(text="hola", intents=INTENTS) is None


def test_intent_classification_failure_is_no_intent_not_an_error(openai_emulator):
    openai_emulator.fail_next(503, headers={"Retry-After": "2"})

    assert ai_intent_classify(text="quiero donar", intents=INTENTS) is None


def test_intent_classification_without_ai_makes_no_call(settings, db):
    settings.OPENAI_API_KEY = ""

    assert ai_intent_classify(text="quiero donar", intents=INTENTS) is None


def test_retry_after_as_an_http_date_and_in_milliseconds(openai_emulator, church_knowledge):
    openai_emulator.fail_next(429, headers={"retry-after-ms": "1500", "Retry-After": "9"})
    with pytest.raises(AITransientError) as caught:
        ai_answer_generate(contact_key="+34600000204", text="¿A qué hora es el culto?")
    assert caught.value.retry_after == 1.5

    openai_emulator.fail_next(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    with pytest.raises(AITransientError) as caught:
        ai_answer_generate(contact_key="+34600000204", text="¿A qué hora es el culto?")
    assert caught.value.retry_after == 0.0  # a date in the past: retry now


def test_azure_with_entra_id_sends_a_managed_identity_token(openai_emulator, church_knowledge, monkeypatch):
    # App Service managed identity, served by the emulator: DefaultAzureCredential finds it in the environment.
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", openai_emulator.base_url + IDENTITY_PATH)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    ai_configuration_create(
        name="azure-entra",
        provider="azure_openai",
        base_url=openai_emulator.base_url,
        api_version="2024-10-21",
        deployment="chat-deploy",
        model="gpt-4o-mini",
        use_entra_id=True,
        activate=True,
    )

    answer = ai_answer_generate(contact_key="+34600000205", text="¿A qué hora es el culto?")

    assert answer.source == "model"
    token_request, chat = openai_emulator.requests
    assert token_request.path == IDENTITY_PATH
    assert token_request.query["resource"] == ["https://cognitiveservices.azure.com"]
    assert chat.path == "/openai/deployments/chat-deploy/chat/completions"
    assert header(chat, "Authorization") == f"Bearer {ENTRA_TOKEN}"
    assert header(chat, "api-key") is None


def test_azure_openai_from_settings_uses_the_managed_identity_when_no_key_is_set(
    openai_emulator, church_knowledge, monkeypatch, settings
):
    # What the azd deployment configures: AZURE_OPENAI_ENDPOINT + AI_MODEL (the deployment), local auth off.
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", openai_emulator.base_url + IDENTITY_PATH)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    settings.AZURE_OPENAI_ENDPOINT = openai_emulator.base_url
    settings.AI_MODEL = "chat-deploy"

    answer = ai_answer_generate(contact_key="+34600000206", text="¿A qué hora es el culto?")

    assert answer.source == "model"
    assert answer.provider == "azure_openai"
    token_request, chat = openai_emulator.requests
    assert token_request.path == IDENTITY_PATH
    assert chat.path == "/openai/deployments/chat-deploy/chat/completions"
    assert chat.query["api-version"] == ["2024-10-21"]
    assert header(chat, "Authorization") == f"Bearer {ENTRA_TOKEN}"
