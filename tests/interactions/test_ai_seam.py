"""The AI seam with apps.assistant and the OpenAI emulator: what no keyword template answered."""

from __future__ import annotations

import json

import pytest

from apps.interactions.models import Direction, Interaction, Message, MessageStatus
from tests.emulators.acs_events import received_event, webhook_url

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/sandbox/api/messages/"
NO_INTENT = '{"intent": "none", "confidence": 0.1, "entity": ""}'


def say(client, text, phone="+254700000001"):
    response = client.post(URL, {"phone": phone, "text": text}, content_type="application/json")
    assert response.status_code == 201
    return response.json()["message"]["id"]


def test_an_unmatched_question_is_answered_by_the_model_as_text(
    client, sandbox, demo_templates, openai_emulator, drain
):
    openai_emulator.reply_with(NO_INTENT, "Abrimos de 9 a 17 h.")

    message_id = say(client, "¿A qué hora abren?")
    drain()

    interaction = Interaction.objects.get(message_id=message_id)
    assert interaction.route == "ai"
    assert interaction.success is True
    assert interaction.reply.kind == "text"
    assert interaction.reply.text == "Abrimos de 9 a 17 h."
    assert interaction.reply.status == MessageStatus.READ
    assert interaction.ai_model == "gpt-emulated"
    assert interaction.ai_provider
    assert interaction.prompt_tokens is not None and interaction.completion_tokens is not None
    assert interaction.context["ai"]["source"] == "model"
    assert "classification" not in interaction.context  # the model chose no intent
    assert len(openai_emulator.chat_requests()) == 2
    assert interaction.context["ai_pending"] is False


def test_the_model_can_choose_an_intent_whose_template_then_answers(
    client, sandbox, demo_templates, openai_emulator, drain
):
    openai_emulator.reply_with('{"intent": "evento", "confidence": 0.92, "entity": "retiro de jóvenes"}')

    message_id = say(client, "¿Cuándo es el retiro de jóvenes?")
    drain()

    interaction = Interaction.objects.get(message_id=message_id)
    assert (interaction.route, interaction.intent, interaction.intent_source) == ("template", "evento", "ai")
    assert interaction.confidence == pytest.approx(0.92)
    assert interaction.reply.template_name == "vea_event_info"
    assert interaction.reply.template_parameters == [["nombre", "amigo"], ["tema", "retiro de jóvenes"]]
    assert len(openai_emulator.chat_requests()) == 1


def test_a_transient_model_error_retries_the_ai_actor_and_answers_once(
    client, sandbox, demo_templates, openai_emulator, drain
):
    # Classification swallows its failure; the answer call's 429 makes the actor retry after Retry-After.
    openai_emulator.fail_next(429, times=2, headers={"Retry-After": "1"}, body={"error": {"message": "slow"}})
    openai_emulator.reply_with(NO_INTENT, "Ya te respondo.")

    message_id = say(client, "¿Tienen estacionamiento?")
    drain()

    interaction = Interaction.objects.get(message_id=message_id)
    assert (interaction.route, interaction.reply.text) == ("ai", "Ya te respondo.")
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1


def test_a_permanent_model_error_gets_a_polite_apology_logged_as_a_failure(
    client, sandbox, demo_templates, openai_emulator, drain
):
    openai_emulator.fail_next(401, times=2, body={"error": {"message": "bad key", "type": "invalid_request_error"}})

    message_id = say(client, "¿Tienen estacionamiento?")
    drain()

    interaction = Interaction.objects.get(message_id=message_id)
    assert interaction.route == "ai"
    assert interaction.success is False
    assert interaction.error.startswith("AIPermanentError")
    assert interaction.reply.text.startswith("Lo sentimos, ahora no podemos responder")


def test_a_voice_note_is_transcribed_and_the_transcript_matches_a_template(
    client, acs_emulator, demo_templates, openai_emulator, drain, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    acs_emulator.add_media("voice-1", b"OggS fake voice", "audio/ogg")
    openai_emulator.transcribe_with("quiero saber del evento")
    audio = received_event(message_type="audio", text=None, media={"mimeType": "audio/ogg", "id": "voice-1"})

    client.post(webhook_url(), json.dumps([audio]), content_type="application/json")
    drain()

    interaction = Interaction.objects.get()
    assert interaction.context["transcript"] == "quiero saber del evento"
    assert (interaction.route, interaction.intent, interaction.template_name) == (
        "template",
        "evento",
        "vea_event_info",
    )
    assert [d.body["template"]["name"] for d in acs_emulator.deliveries] == ["vea_event_info"]
    assert len(openai_emulator.transcription_requests()) == 1


def test_a_later_template_reply_waits_for_the_earlier_ai_answer(
    client, sandbox, demo_templates, openai_emulator, drain
):
    """Replies keep arrival order: the template answer to the second message goes after the AI answer."""
    openai_emulator.reply_with(NO_INTENT, "Abrimos de 9 a 17 h.")

    first = say(client, "¿A qué hora abren?")
    second = say(client, "¿Cuándo es la conferencia de jóvenes?")
    drain()

    replies = list(Message.objects.filter(direction=Direction.OUTBOUND).order_by("created_at", "id"))
    assert [reply.in_reply_to_id for reply in replies] == [first, second]
    assert [reply.kind for reply in replies] == ["text", "template"]
    assert Interaction.objects.get(message_id=second).route == "template"
    assert all(reply.status == MessageStatus.READ for reply in replies)


def test_an_ai_answer_older_than_the_wait_horizon_no_longer_holds_the_contact(sandbox, demo_templates, settings):
    """A model that never answered (or an AI task dropped by its age limit) must not silence the contact."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.interactions.services import inbound_process

    from .factories import InboundMessageFactory, InteractionFactory

    stuck = InteractionFactory(route="unmatched", context={"ai_pending": True}, message__status=MessageStatus.PROCESSED)
    contact = stuck.contact
    later = InboundMessageFactory(contact=contact, text="¿Cuándo es la conferencia de jóvenes?")

    inbound_process(message_id=later.pk)
    assert Message.objects.get(pk=later.pk).status == MessageStatus.RECEIVED  # waits behind the AI answer

    Interaction.objects.filter(pk=stuck.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.AI_REPLY_ORDER_WAIT_SECONDS + 1)
    )
    inbound_process(message_id=later.pk)
    assert Interaction.objects.get(message_id=later.pk).route == "template"
