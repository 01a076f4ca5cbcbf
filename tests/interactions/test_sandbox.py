from __future__ import annotations

import pytest

from apps.interactions.models import Direction, Interaction, Message, MessageStatus

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/sandbox/api/messages/"


def test_sandbox_message_is_answered_with_the_matching_template_through_the_real_pipeline(
    client, sandbox, demo_templates, drain
):
    response = client.post(
        URL,
        {"phone": "+254700000001", "text": "¿Cuándo es la conferencia?", "name": "Ana"},
        content_type="application/json",
    )
    assert response.status_code == 201
    inbound = response.json()["message"]
    assert inbound["direction"] == "in"
    assert inbound["status"] == "received"
    assert inbound["text"] == "¿Cuándo es la conferencia?"

    drain()

    conversation = client.get(URL, {"phone": "+254700000001"}).json()
    assert conversation["phone"] == "+254700000001"
    assert [(m["direction"], m["kind"], m["status"]) for m in conversation["messages"]] == [
        ("in", "text", "processed"),
        ("out", "template", "read"),
    ]
    reply = conversation["messages"][1]
    interaction = Interaction.objects.get(message_id=inbound["id"])
    entity = interaction.entity or "nuestros eventos"
    assert reply["template_name"] == "vea_event_info"
    assert reply["template_language"] == "es"
    assert reply["template_parameters"] == [["nombre", "Ana"], ["tema", entity]]
    assert reply["text"] == f"Hola Ana, te contamos sobre {entity}."
    assert reply["in_reply_to"] == inbound["id"]
    assert conversation["messages"][0]["route"] == "template"
    assert conversation["messages"][0]["intent"] == "evento"
    assert interaction.route == "template"
    assert interaction.template_name == "vea_event_info"
    assert interaction.reply_id == reply["id"]
    assert interaction.success is True
    assert interaction.context["parameters"] == [["nombre", "Ana"], ["tema", entity]]


def test_sandbox_conversation_after_an_id_returns_only_newer_messages(client, sandbox, demo_templates, drain):
    first = client.post(URL, {"phone": "+254700000002", "text": "hola"}, content_type="application/json").json()
    drain()

    newer = client.get(URL, {"phone": "+254700000002", "after": first["message"]["id"]}).json()["messages"]

    assert [(m["direction"], m["template_name"]) for m in newer] == [("out", "vea_request_received")]
    assert newer[0]["text"] == "Hola amigo, recibimos tu mensaje."


def test_unmatched_text_without_the_assistant_app_gets_the_request_received_template(
    client, sandbox, demo_templates, settings, drain
):
    settings.AI_FALLBACK_APP = ""  # as when apps.assistant is not installed
    inbound = client.post(URL, {"phone": "+254700000003", "text": "qwerty"}, content_type="application/json")
    drain()

    interaction = Interaction.objects.get()
    assert interaction.message_id == inbound.json()["message"]["id"]
    assert interaction.route == "unmatched"
    assert interaction.template_name == "vea_request_received"
    assert interaction.reply.template_name == "vea_request_received"
    assert interaction.reply.text == "Hola amigo, recibimos tu mensaje."
    assert interaction.context == {
        "reason": "no intent matched",
        "ai_pending": False,
        "ai": "not installed",
        "parameters": [["nombre", "amigo"]],
    }


def test_sandbox_is_not_served_when_disabled(client, settings):
    settings.SANDBOX_ENABLED = False

    response = client.post(URL, {"phone": "+254700000001", "text": "hola"}, content_type="application/json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"phone": "", "text": "hola"}, "phone is required"),
        ({"phone": "+254700000001", "text": "  "}, "text is required"),
    ],
)
def test_sandbox_refuses_incomplete_messages(client, sandbox, body, message):
    response = client.post(URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "VALIDATION_ERROR", "message": message, "details": {}}}


def test_sandbox_refuses_an_impossible_phone_number(client, sandbox):
    response = client.post(URL, {"phone": "+1", "text": "hola"}, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not Message.objects.filter(direction=Direction.INBOUND).exists()


def test_sandbox_outbound_reports_delivered_and_read(client, sandbox, demo_templates, drain):
    client.post(URL, {"phone": "+254700000004", "text": "evento"}, content_type="application/json")
    drain()

    reply = Message.objects.get(direction=Direction.OUTBOUND)
    assert reply.status == MessageStatus.READ
    assert reply.sent_at and reply.delivered_at and reply.read_at
    assert reply.provider_message_id == f"sandbox-out-{reply.idempotency_key}"
    assert sorted(reply.status_updates.values_list("status", flat=True)) == ["delivered", "read"]
