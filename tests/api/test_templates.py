from __future__ import annotations

import pytest

from apps.message_templates.models import WhatsAppTemplate

LIST_URL = "/api/v1/whatsapp/templates/"
TEST_URL = "/api/v1/whatsapp/templates/test/"


@pytest.fixture
def templates(db):
    booking = WhatsAppTemplate.objects.create(
        name="booking_confirmation",
        language="es",
        category="utility",
        parameters=["name", "date"],
        body_text="Hola {{name}}, tu reserva es el {{date}}.",
    )
    promo = WhatsAppTemplate.objects.create(
        name="weekend_offer", language="es", category="marketing", parameters=[], body_text="¡Oferta de fin de semana!"
    )
    paused = WhatsAppTemplate.objects.create(
        name="old_notice", language="en", category="utility", status="paused", body_text="Old."
    )
    return booking, promo, paused


@pytest.mark.django_db
def test_templates_are_listed_with_their_parameters(analyst_client, templates):
    response = analyst_client.get(LIST_URL)

    assert response.status_code == 200
    assert response.json() == [
        {
            "name": "booking_confirmation",
            "language": "es",
            "category": "utility",
            "status": "approved",
            "active": True,
            "parameters": ["name", "date"],
            "body_text": "Hola {{name}}, tu reserva es el {{date}}.",
            "header_text": "",
            "footer_text": "",
        },
        {
            "name": "old_notice",
            "language": "en",
            "category": "utility",
            "status": "paused",
            "active": True,
            "parameters": [],
            "body_text": "Old.",
            "header_text": "",
            "footer_text": "",
        },
        {
            "name": "weekend_offer",
            "language": "es",
            "category": "marketing",
            "status": "approved",
            "active": True,
            "parameters": [],
            "body_text": "¡Oferta de fin de semana!",
            "header_text": "",
            "footer_text": "",
        },
    ]


@pytest.mark.django_db
def test_templates_filter_by_category_and_sendable_ones(analyst_client, templates):
    marketing = analyst_client.get(LIST_URL, {"category": "marketing"}).json()
    sendable = analyst_client.get(LIST_URL, {"active_only": "true", "category": "utility"}).json()
    bad = analyst_client.get(LIST_URL, {"category": "promo"})

    assert [t["name"] for t in marketing] == ["weekend_offer"]
    assert [t["name"] for t in sendable] == ["booking_confirmation"]
    assert bad.status_code == 400
    assert bad.json()["error"]["details"] == {"fields": {"category": ['"promo" is not a valid choice.']}}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "parameters", [{"name": "Ana", "date": "3 de diciembre"}, ["Ana", "3 de diciembre"]], ids=["by-name", "in-order"]
)
def test_a_template_test_renders_without_sending(integrator_client, templates, parameters):
    from apps.interactions.models import Message

    response = integrator_client.post(
        TEST_URL, {"template_name": "booking_confirmation", "parameters": parameters}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {
        "valid": True,
        "template_name": "booking_confirmation",
        "language": "es",
        "rendered_text": "Hola Ana, tu reserva es el 3 de diciembre.",
        "parameters": [["name", "Ana"], ["date", "3 de diciembre"]],
        "errors": [],
    }
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_template_test_lists_every_validation_problem(integrator_client, templates):
    response = integrator_client.post(
        TEST_URL,
        {"template_name": "booking_confirmation", "parameters": {"name": "Ana\nMaria", "extra": "x"}, "language": "es"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {
        "valid": False,
        "template_name": "booking_confirmation",
        "language": "es",
        "rendered_text": None,
        "parameters": [],
        "errors": [
            "Missing value for parameter 'date'.",
            "Unexpected parameter 'extra' (template 'booking_confirmation' declares: name, date).",
            "Parameter 'name' contains a newline.",
        ],
    }


@pytest.mark.django_db
def test_testing_an_unknown_or_unapproved_template_is_404(integrator_client, templates):
    unknown = integrator_client.post(TEST_URL, {"template_name": "nope"}, format="json")
    paused = integrator_client.post(TEST_URL, {"template_name": "old_notice"}, format="json")

    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": {
            "code": "NOT_FOUND",
            "message": "No active approved template named 'nope'.",
            "details": {"template": "nope", "language": ""},
        }
    }
    assert paused.status_code == 404


@pytest.mark.django_db
def test_template_test_parameters_must_be_an_object_or_a_list(integrator_client, templates):
    response = integrator_client.post(
        TEST_URL, {"template_name": "booking_confirmation", "parameters": "Ana"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "fields": {"parameters": ["Give an object (name → value) or a list in the template's order."]}
    }
