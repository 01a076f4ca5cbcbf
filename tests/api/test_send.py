from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import ApiIdempotencyRecord
from apps.interactions.models import Direction, Message
from apps.message_templates.models import WhatsAppTemplate

from .factories import ContactFactory

URL = "/api/v1/whatsapp/send/"
PHONE = "+254712345678"
EITHER = "Give either `message` or `template_name` (with `parameters`)."


@pytest.fixture
def contact_in_window(db):
    return ContactFactory(phone=PHONE, channel="twilio", last_inbound_at=timezone.now() - timedelta(hours=2))


@pytest.fixture
def templates(db):
    WhatsAppTemplate.objects.create(
        name="booking_confirmation",
        language="es",
        category="utility",
        parameters=["name"],
        body_text="Hola {{name}}, tu reserva está confirmada.",
    )
    WhatsAppTemplate.objects.create(
        name="weekend_offer", language="es", category="marketing", parameters=[], body_text="¡Oferta!"
    )


def _send(client, body, key="order-1"):
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_text_inside_the_window_is_queued_with_202(integrator_client, integrator, contact_in_window):
    response = _send(integrator_client, {"phone_number": PHONE, "message": "Your table is ready."})

    assert response.status_code == 202
    message = Message.objects.get(direction=Direction.OUTBOUND)
    assert response.json() == {
        "id": message.pk,
        "status": "queued",
        "channel": "twilio",
        "kind": "text",
        "idempotency_key": "order-1",
        "created": True,
    }
    assert message.text == "Your table is ready."
    assert message.contact == contact_in_window
    # A UUID derived from the user and the client's key (ACS takes it as Repeatability-Request-ID).
    assert uuid.UUID(message.idempotency_key) == ApiIdempotencyRecord.objects.get(user=integrator).message_key


@pytest.mark.django_db
def test_the_same_key_returns_the_same_message_and_never_sends_twice(integrator_client, contact_in_window):
    body = {"phone_number": PHONE, "message": "Your table is ready."}
    first = _send(integrator_client, body)

    second = _send(integrator_client, body)

    assert second.status_code == 202
    assert second.json() == {**first.json(), "created": False}
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_409(integrator_client, contact_in_window):
    _send(integrator_client, {"phone_number": PHONE, "message": "Your table is ready."})

    response = _send(integrator_client, {"phone_number": PHONE, "message": "Something else."})

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "IDEMPOTENCY_KEY_REUSED",
            "message": "This Idempotency-Key was already used with a different request body.",
            "details": {"idempotency_key": "order-1"},
        }
    }
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1


@pytest.mark.django_db
def test_two_clients_may_use_the_same_key_for_different_messages(integrator_client, staff, contact_in_window):
    from .conftest import _client_for

    _send(integrator_client, {"phone_number": PHONE, "message": "One."})
    response = _send(_client_for(staff), {"phone_number": PHONE, "message": "Two."})

    assert response.status_code == 202
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 2


@pytest.mark.django_db
def test_free_text_outside_the_window_is_refused_naming_the_template(integrator_client, settings):
    ContactFactory(phone=PHONE, last_inbound_at=timezone.now() - timedelta(hours=30))

    response = _send(integrator_client, {"phone_number": PHONE, "message": "Hello again"})

    assert response.status_code == 409
    body = response.json()
    assert body["error"]["code"] == "WINDOW_CLOSED"
    assert body["error"]["details"]["template"] == settings.FALLBACK_TEMPLATE_NAME
    assert not Message.objects.exists()
    assert not ApiIdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_a_template_may_go_outside_the_window_even_to_a_new_number(integrator_client, templates, settings):
    response = _send(
        integrator_client,
        {"phone_number": "+254733000111", "template_name": "booking_confirmation", "parameters": {"name": "Ana"}},
    )

    assert response.status_code == 202
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.kind, message.template_name, message.text) == (
        "template",
        "booking_confirmation",
        "Hola Ana, tu reserva está confirmada.",
    )
    assert message.channel == settings.DEFAULT_CHANNEL


@pytest.mark.django_db
def test_marketing_templates_respect_opt_out(integrator_client, templates):
    ContactFactory(phone=PHONE, opted_out_at=timezone.now())

    response = _send(integrator_client, {"phone_number": PHONE, "template_name": "weekend_offer"})

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "OPTED_OUT",
            "message": "The contact opted out of marketing messages.",
            "details": {"template": "weekend_offer", "category": "marketing"},
        }
    }


@pytest.mark.django_db
def test_invalid_template_parameters_are_a_400_listing_the_problems(integrator_client, templates):
    response = _send(integrator_client, {"phone_number": PHONE, "template_name": "booking_confirmation"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "TEMPLATE_INVALID"
    assert error["details"]["errors"] == ["Missing value for parameter 'name'."]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"phone_number": PHONE},
            {"non_field_errors": ["Give either `message` or `template_name` (with `parameters`)."]},
        ),
        (
            {"phone_number": PHONE, "message": "x", "template_name": "y"},
            {"non_field_errors": ["Give either `message` or `template_name` (with `parameters`)."]},
        ),
        ({"phone_number": "abc", "message": "x"}, {"phone_number": ["Not a valid phone number."]}),
        ({"phone_number": PHONE, "message": "x", "channel": "sms"}, {"channel": ['"sms" is not a valid choice.']}),
    ],
)
def test_bad_send_bodies_are_a_400(integrator_client, body, fields):
    response = _send(integrator_client, body)

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "VALIDATION_ERROR", "message": "Invalid input.", "details": {"fields": fields}}
    }


@pytest.mark.django_db
def test_sending_needs_an_idempotency_key(integrator_client, contact_in_window):
    response = integrator_client.post(URL, {"phone_number": PHONE, "message": "x"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "IDEMPOTENCY_KEY_REQUIRED",
            "message": "Send an Idempotency-Key header (up to 255 characters).",
            "details": {},
        }
    }


@pytest.mark.django_db
def test_the_queued_message_can_be_followed_by_id(integrator_client, contact_in_window):
    sent = _send(integrator_client, {"phone_number": PHONE, "message": "Your table is ready."}).json()

    response = integrator_client.get(f"/api/v1/whatsapp/messages/{sent['id']}/")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["text"]) == ("queued", "Your table is ready.")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_send_one_message(integrator, broker):
    # `broker`: these commits really enqueue the delivery; the fixture flushes it afterwards.
    import threading

    from django.db import connection

    from .conftest import _client_for

    ContactFactory(phone=PHONE, last_inbound_at=timezone.now() - timedelta(minutes=5))
    barrier = threading.Barrier(2)
    responses = []

    def post():
        try:
            barrier.wait(timeout=10)
            responses.append(_send(_client_for(integrator), {"phone_number": PHONE, "message": "Once only."}))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(r.status_code for r in responses) == [202, 202]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sorted(r.json()["created"] for r in responses) == [False, True]
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1
