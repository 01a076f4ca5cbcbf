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


# --- AI answers that never come: the contact gets an apology, not silence ----------------------------------
APOLOGY = "Lo sentimos, ahora no podemos responder"


def test_a_provider_failing_through_the_last_retry_gets_the_apology_and_frees_the_contact(
    client, sandbox, demo_templates, openai_emulator, drain, settings
):
    # Every attempt fails (AI_MAX_RETRIES = 2 in tests: three attempts, classification + answer each).
    openai_emulator.fail_next(503, times=100, body={"error": {"message": "overloaded"}})

    first = say(client, "¿Tienen estacionamiento?")
    second = say(client, "¿Cuándo es la conferencia de jóvenes?")  # waits behind the AI answer
    drain()

    interaction = Interaction.objects.get(message_id=first)
    assert (interaction.route, interaction.success) == ("ai", False)
    assert interaction.error == f"AI answer failed {settings.AI_MAX_RETRIES + 1} times; gave up"
    assert interaction.context["ai_given_up"] is True and interaction.context["ai_pending"] is False
    assert interaction.reply.text.startswith(APOLOGY)
    replies = list(Message.objects.filter(direction=Direction.OUTBOUND).order_by("created_at", "id"))
    assert [(r.in_reply_to_id, r.kind) for r in replies] == [(first, "text"), (second, "template")]
    assert all(reply.status == MessageStatus.READ for reply in replies)


def test_an_ai_task_dropped_by_its_age_limit_is_answered_by_the_sweeper_once(sandbox, demo_templates, broker, drain):
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from apps.interactions.services import ai_reply_process, sweeper_run
    from apps.interactions.tasks import ai_answer_task

    from .factories import InteractionFactory

    stuck = InteractionFactory(route="ai", context={"ai_pending": True}, message__status=MessageStatus.PROCESSED)
    # The task reaches the worker past its age limit: AgeLimit drops it and nothing answers.
    ai_answer_task.send_with_options(args=(stuck.message_id,), max_age=1)
    drain()
    assert Interaction.objects.get(pk=stuck.pk).reply is None
    assert broker.do_qsize("ai") == 0

    give_up = timedelta(milliseconds=settings.AI_MAX_AGE_MS + settings.AI_TIME_LIMIT_MS, seconds=5)
    # Not yet: an attempt could still be running until max age + time limit.
    Interaction.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - give_up + timedelta(seconds=10))
    assert sweeper_run(older_than_seconds=5).ai_given_up == 0

    Interaction.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - give_up - timedelta(seconds=1))
    assert sweeper_run(older_than_seconds=5).ai_given_up == 1
    drain()

    interaction = Interaction.objects.get(pk=stuck.pk)
    assert (interaction.route, interaction.success, interaction.context["ai_given_up"]) == ("ai", False, True)
    assert "AI_MAX_AGE_MS" in interaction.error
    assert interaction.reply.text.startswith(APOLOGY)
    assert interaction.reply.status == MessageStatus.READ
    # Idempotent: a second sweep and a late AI attempt find it answered.
    assert sweeper_run(older_than_seconds=5).ai_given_up == 0
    ai_reply_process(message_id=stuck.message_id)
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1


def test_the_sweeper_leaves_old_unanswered_rows_that_were_not_waiting_for_the_ai(sandbox, demo_templates):
    from datetime import timedelta

    from django.utils import timezone

    from apps.interactions.services import sweeper_run

    from .factories import InteractionFactory

    blocked = InteractionFactory(route="blocked", context={}, message__status=MessageStatus.PROCESSED)
    Interaction.objects.filter(pk=blocked.pk).update(created_at=timezone.now() - timedelta(hours=2))

    assert sweeper_run(older_than_seconds=5).ai_given_up == 0
    assert Interaction.objects.get(pk=blocked.pk).reply is None
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
