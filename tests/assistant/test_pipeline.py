"""End to end through the webhook: the pipeline hands unmatched messages to the assistant (ai_answer_task)."""

from __future__ import annotations

import time

import pytest

from apps.assistant.models import KnowledgeChunk
from apps.assistant.services import knowledge_document_create
from apps.interactions.models import Direction, Interaction, Message
from tests.emulators.twilio_requests import INBOUND_PATH, twilio_inbound_form, twilio_post

pytestmark = pytest.mark.django_db(transaction=True)

SANDBOX = "/sandbox/api/messages/"
HORARIOS = "Los cultos de la Iglesia VEA son los domingos a las 10:00 y a las 18:00."


@pytest.fixture
def knowledge(db):
    return knowledge_document_create(title="Horarios de culto", content=HORARIOS, language="es")


def _model(answer: str):
    """Emulator script: the pipeline's intent classification (when a keyword match was weak) finds no intent;
    the grounded answer request gets `answer`."""

    def reply(body: dict) -> str:
        if body["messages"][0]["content"].startswith("You route WhatsApp messages"):
            return '{"intent": "none", "confidence": 0.0, "entity": ""}'
        return answer

    return reply


def _answer_requests(emulator) -> list[dict]:
    return [r for r in emulator.chat_requests() if "Knowledge passages:" in r["messages"][0]["content"]]


def _replies(phone: str) -> list[Message]:
    return list(Message.objects.filter(direction=Direction.OUTBOUND, contact__phone=phone).order_by("id"))


def test_an_unmatched_question_is_answered_by_the_model_with_the_chunk_in_the_prompt(
    client, sandbox, demo_templates, knowledge, openai_emulator, drain
):
    openai_emulator.reply_by(_model("Los cultos son los domingos a las 10:00 y a las 18:00."))

    response = client.post(
        SANDBOX, {"phone": "+254700000501", "text": "¿A qué hora es el culto?"}, content_type="application/json"
    )
    assert response.status_code == 201
    drain()

    [reply] = _replies("+254700000501")
    assert (reply.kind, reply.text) == ("text", "Los cultos son los domingos a las 10:00 y a las 18:00.")
    [request] = _answer_requests(openai_emulator)
    assert HORARIOS in request["messages"][0]["content"]
    assert request["messages"][-1] == {"role": "user", "content": "¿A qué hora es el culto?"}
    interaction = Interaction.objects.get(message_id=response.json()["message"]["id"])
    assert (interaction.route, interaction.reply_id, interaction.success) == ("ai", reply.id, True)
    assert (interaction.ai_provider, interaction.ai_model) == ("compatible", "gpt-emulated")
    assert interaction.completion_tokens == 12
    assert interaction.prompt_tokens > 0
    assert interaction.context["ai"]["source"] == "model"
    assert interaction.context["ai"]["chunk_ids"] == [KnowledgeChunk.objects.get().id]


def test_without_ai_an_unmatched_question_gets_the_knowledge_excerpt(
    client, sandbox, demo_templates, knowledge, settings, drain
):
    settings.OPENAI_API_KEY = ""

    client.post(SANDBOX, {"phone": "+254700000502", "text": "¿Horario del culto?"}, content_type="application/json")
    drain()

    [reply] = _replies("+254700000502")
    assert reply.text == (
        f"Respuesta automática con un extracto de nuestra información:\n\n*Horarios de culto*\n{HORARIOS}"
    )
    assert Interaction.objects.get(contact__phone="+254700000502").context["ai"]["source"] == "retrieval"


def test_a_rate_limited_model_is_retried_after_retry_after_and_answers_once(
    client, sandbox, demo_templates, knowledge, openai_emulator, drain
):
    openai_emulator.fail_next(429, headers={"Retry-After": "1"}, body={"error": {"message": "slow down"}})
    openai_emulator.reply_by(_model("Domingos a las 10:00."))

    client.post(
        SANDBOX, {"phone": "+254700000503", "text": "¿A qué hora es el culto?"}, content_type="application/json"
    )
    drain()

    assert [m.text for m in _replies("+254700000503")] == ["Domingos a las 10:00."]
    assert len(openai_emulator.refused) == 1
    assert len(_answer_requests(openai_emulator)) == 1


def test_a_refused_model_call_gets_a_polite_apology(client, sandbox, demo_templates, knowledge, openai_emulator,
                                                    settings, drain):  # fmt: skip
    settings.OPENAI_API_KEY = "sk-revoked-key-000"

    client.post(
        SANDBOX, {"phone": "+254700000504", "text": "¿A qué hora es el culto?"}, content_type="application/json"
    )
    drain()

    [reply] = _replies("+254700000504")
    assert reply.kind == "text" and reply.text
    interaction = Interaction.objects.get(contact__phone="+254700000504")
    assert (interaction.route, interaction.success) == ("ai", False)
    assert "AIPermanentError" in interaction.error
    assert "sk-revoked" not in interaction.error


def test_a_voice_note_whose_transcript_matches_a_template_gets_the_template(
    client, twilio_emulator, demo_templates, openai_emulator, settings, tmp_path, drain
):
    settings.MEDIA_ROOT = tmp_path
    settings.PUBLIC_BASE_URL = "https://relay.example.com"
    demo_templates.event_info.twilio_content_sid = "HX" + "e" * 32
    demo_templates.event_info.save()
    url = twilio_emulator.add_media(b"OggS\x00voice-note", "audio/ogg")
    openai_emulator.transcribe_with("¿Cuándo es la conferencia?")

    twilio_post(
        client,
        INBOUND_PATH,
        twilio_inbound_form(
            body="", sender="+254700000505", MessageType="audio", NumMedia="1", MediaUrl0=url,
            MediaContentType0="audio/ogg",
        ),
    )  # fmt: skip
    drain()

    [transcription] = openai_emulator.transcription_requests()
    assert transcription.fields["file"]["content"] == b"OggS\x00voice-note"
    assert transcription.fields["file"]["filename"].endswith(".ogg")
    assert openai_emulator.chat_requests() == []
    [reply] = _replies("+254700000505")
    assert reply.template_name == "vea_event_info"
    interaction = Interaction.objects.get(contact__phone="+254700000505")
    assert (interaction.route, interaction.intent) == ("template", "evento")
    assert interaction.context["transcript"] == "¿Cuándo es la conferencia?"


def test_a_slow_model_for_one_contact_does_not_delay_a_template_reply_to_another(
    client, sandbox, demo_templates, knowledge, openai_emulator, drain
):
    openai_emulator.reply_by(_model("Domingos a las 10:00."))
    openai_emulator.hold()
    client.post(
        SANDBOX, {"phone": "+254700000506", "text": "¿A qué hora es el culto?"}, content_type="application/json"
    )
    openai_emulator.wait_until_held(1)

    client.post(
        SANDBOX, {"phone": "+254700000507", "text": "¿Cuándo es la conferencia?"}, content_type="application/json"
    )
    deadline = time.monotonic() + 10
    while not _replies("+254700000507"):
        assert time.monotonic() < deadline, "the template reply waited for the model"
        time.sleep(0.05)

    assert _replies("+254700000507")[0].template_name == "vea_event_info"
    assert _replies("+254700000506") == []  # the model is still thinking
    assert openai_emulator.held == 1
    openai_emulator.release()
    drain()
    assert [m.text for m in _replies("+254700000506")] == ["Domingos a las 10:00."]
