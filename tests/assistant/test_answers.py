from __future__ import annotations

import pytest

from apps.assistant.models import KnowledgeChunk
from apps.assistant.services import (
    AIAnswer,
    AIPermanentError,
    AITransientError,
    ai_answer_generate,
    ai_configured,
    conversation_history,
)
from tests.assistant.conftest import HORARIOS
from tests.emulators.openai import header

pytestmark = pytest.mark.django_db


def test_the_retrieved_chunk_reaches_the_system_prompt_and_the_answer_is_the_models(openai_emulator, church_knowledge):
    openai_emulator.reply_with("Los cultos son los domingos a las 10:00 y a las 18:00.")

    answer = ai_answer_generate(contact_key="+34600000001", text="¿A qué hora es el culto del domingo?")

    chunk = KnowledgeChunk.objects.get(document__title="Horarios de culto")
    assert answer.text == "Los cultos son los domingos a las 10:00 y a las 18:00."
    assert answer.source == "model"
    assert answer.provider == "compatible"
    assert answer.model == "gpt-emulated"
    assert answer.chunk_ids[0] == chunk.id
    assert answer.completion_tokens == 12  # the emulator counts words
    assert answer.prompt_tokens > 50
    [request] = openai_emulator.chat_requests()
    assert request["model"] == "gpt-emulated"
    system, user = request["messages"]
    assert system["role"] == "system"
    assert HORARIOS in system["content"]
    assert "Use only the facts in the knowledge passages" in system["content"]
    assert "Answer in Spanish" in system["content"]
    assert user == {"role": "user", "content": "¿A qué hora es el culto del domingo?"}
    [accepted] = openai_emulator.requests
    assert header(accepted, "Authorization") == f"Bearer {openai_emulator.api_key}"


def test_with_nothing_relevant_the_model_is_bound_to_the_configured_no_knowledge_reply(
    openai_emulator, church_knowledge, settings
):
    settings.AI_NO_KNOWLEDGE_REPLY = "No tengo ese dato; te escribirá una persona."
    openai_emulator.reply_with("No tengo ese dato; te escribirá una persona.")

    answer = ai_answer_generate(contact_key="+34600000002", text="¿Cuál es la capital de Australia?")

    assert answer.text == "No tengo ese dato; te escribirá una persona."
    assert answer.source == "model"
    assert answer.chunk_ids == []
    system = openai_emulator.chat_requests()[0]["messages"][0]["content"]
    assert 'reply exactly: "No tengo ese dato; te escribirá una persona."' in system
    assert system.endswith("Knowledge passages:\n(none)")
    assert "Calle Mayor" not in system and "domingos" not in system


def test_without_ai_the_best_passage_is_sent_as_a_labelled_excerpt(church_knowledge, settings):
    settings.OPENAI_API_KEY = ""
    assert not ai_configured()

    answer = ai_answer_generate(contact_key="+34600000003", text="¿Dónde están? ¿Hay aparcamiento?")

    chunk = KnowledgeChunk.objects.get(document__title="Ubicación")
    assert answer == AIAnswer(
        text=(f"Respuesta automática con un extracto de nuestra información:\n\n*Ubicación*\n{chunk.text}"),
        source="retrieval",
        chunk_ids=[chunk.id],
    )


def test_without_ai_and_nothing_relevant_the_source_is_none_with_no_text(church_knowledge, settings):
    settings.OPENAI_API_KEY = ""

    answer = ai_answer_generate(contact_key="+34600000004", text="¿Cuál es la capital de Australia?")

    assert answer == AIAnswer(text="", source="none")


def test_the_conversation_carries_over_into_the_next_prompt(openai_emulator, church_knowledge):
    openai_emulator.reply_with("Los domingos a las 10:00 y a las 18:00.", "En la Calle Mayor 12.")

    ai_answer_generate(contact_key="+34600000005", text="¿A qué hora es el culto?")
    ai_answer_generate(contact_key="+34600000005", text="¿Y dónde está la iglesia?")

    second = openai_emulator.chat_requests()[1]["messages"]
    assert second[1:] == [
        {"role": "user", "content": "¿A qué hora es el culto?"},
        {"role": "assistant", "content": "Los domingos a las 10:00 y a las 18:00."},
        {"role": "user", "content": "¿Y dónde está la iglesia?"},
    ]
    assert conversation_history(contact_key="+34600000005")[-1] == {
        "role": "assistant",
        "content": "En la Calle Mayor 12.",
    }


def test_the_conversation_of_one_contact_is_not_shown_to_another(openai_emulator, church_knowledge):
    ai_answer_generate(contact_key="+34600000006", text="¿A qué hora es el culto?")
    ai_answer_generate(contact_key="+34600000007", text="¿A qué hora es el culto?")

    assert [m["role"] for m in openai_emulator.chat_requests()[1]["messages"]] == ["system", "user"]


def test_a_follow_up_without_keywords_retrieves_with_the_previous_question(openai_emulator, church_knowledge):
    openai_emulator.reply_with("Los domingos a las 10:00.", "También a las 18:00.")
    ai_answer_generate(contact_key="+34600000008", text="¿A qué hora es el culto del domingo?")

    answer = ai_answer_generate(contact_key="+34600000008", text="¿Y por la tarde?")

    assert answer.source == "model"
    assert HORARIOS in openai_emulator.chat_requests()[1]["messages"][0]["content"]


def test_rate_limited_model_raises_a_transient_error_with_retry_after(openai_emulator, church_knowledge):
    openai_emulator.fail_next(
        429,
        headers={"Retry-After": "7"},
        body={"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
    )

    with pytest.raises(AITransientError) as caught:
        ai_answer_generate(contact_key="+34600000009", text="¿A qué hora es el culto?")

    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429
    assert len(openai_emulator.refused) == 1  # the client itself never retried


def test_server_errors_are_transient_and_the_client_does_not_retry_them(openai_emulator, church_knowledge):
    openai_emulator.fail_next(500, body={"error": {"message": "boom", "type": "server_error"}})

    with pytest.raises(AITransientError) as caught:
        ai_answer_generate(contact_key="+34600000010", text="¿A qué hora es el culto?")

    assert caught.value.retry_after is None
    assert caught.value.status == 500
    assert len(openai_emulator.refused) == 1


def test_a_timeout_is_transient(openai_emulator, church_knowledge, settings):
    settings.AI_REQUEST_TIMEOUT_SECONDS = 0.3
    openai_emulator.hold()

    with pytest.raises(AITransientError, match="timed out"):
        ai_answer_generate(contact_key="+34600000011", text="¿A qué hora es el culto?")


def test_an_exhausted_quota_is_permanent(openai_emulator, church_knowledge):
    openai_emulator.fail_next(
        429,
        body={
            "error": {"message": "You exceeded your quota", "type": "insufficient_quota", "code": "insufficient_quota"}
        },
    )

    with pytest.raises(AIPermanentError):
        ai_answer_generate(contact_key="+34600000012", text="¿A qué hora es el culto?")


def test_a_wrong_key_is_a_permanent_error_and_the_key_is_not_in_the_message(
    openai_emulator, church_knowledge, settings
):
    settings.OPENAI_API_KEY = "sk-wrong-key-1234567890"

    with pytest.raises(AIPermanentError) as caught:
        ai_answer_generate(contact_key="+34600000013", text="¿A qué hora es el culto?")

    assert caught.value.status == 401
    assert "sk-wrong" not in str(caught.value)
    assert header(openai_emulator.refused[0], "Authorization") == "Bearer sk-wrong-key-1234567890"


def test_a_long_model_answer_is_cut_to_the_whatsapp_limit(openai_emulator, church_knowledge):
    openai_emulator.reply_with("palabra " * 1000)

    answer = ai_answer_generate(contact_key="+34600000014", text="¿A qué hora es el culto?")

    assert len(answer.text) <= 4096
    assert answer.text.endswith("palabra…")
