from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.interactions.models import Direction, MessageStatus, StatusUpdate

from .factories import ContactFactory, MessageFactory, at

URL = "/api/v1/whatsapp/history/"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def conversation(db):
    contact = ContactFactory(phone="+254712345678", profile_name="Ana", channel="acs")
    messages = []
    for i in range(5):
        inbound = at(MessageFactory(contact=contact, text=f"pregunta {i}"), T0 + timedelta(minutes=2 * i))
        reply = at(
            MessageFactory(
                contact=contact,
                direction=Direction.OUTBOUND,
                status=MessageStatus.READ if i else MessageStatus.FAILED,
                error_code="" if i else "131047",
                text=f"respuesta {i}",
                in_reply_to=inbound,
            ),
            T0 + timedelta(minutes=2 * i + 1),
        )
        messages += [inbound, reply]
    StatusUpdate.objects.create(
        channel="acs",
        provider_message_id=messages[-1].provider_message_id,
        status="delivered",
        occurred_at=T0 + timedelta(minutes=10),
        message=messages[-1],
    )
    ContactFactory(phone="+254700000001")  # someone else's conversation is never mixed in
    return contact, messages


@pytest.mark.django_db
def test_history_lists_both_directions_newest_first_with_statuses(analyst_client, conversation):
    contact, messages = conversation

    response = analyst_client.get(URL, {"phone_number": "0712 345 678".replace("0", "+254", 1), "limit": 3})

    assert response.status_code == 200
    body = response.json()
    assert body["contact"] == {
        "id": contact.pk,
        "phone_number": "+254712345678",
        "profile_name": "Ana",
        "channel": "acs",
        "last_inbound_at": None,
        "opted_out": False,
    }
    assert [m["id"] for m in body["messages"]] == [m.pk for m in reversed(messages)][:3]
    newest = body["messages"][0]
    assert newest["direction"] == "out"
    assert newest["text"] == "respuesta 4"
    assert newest["in_reply_to"] == messages[-2].pk
    assert newest["statuses"] == [
        {"status": "delivered", "occurred_at": "2026-11-30T09:10:00Z", "error_code": "", "error_message": ""}
    ]
    assert body["has_more"] is True
    assert body["next_before"] == body["messages"][-1]["id"]


@pytest.mark.django_db
def test_history_pages_with_before_until_the_first_message(analyst_client, conversation):
    _, messages = conversation
    seen, before = [], None
    while True:
        params = {"phone_number": "+254712345678", "limit": 4, **({"before": before} if before else {})}
        body = analyst_client.get(URL, params).json()
        seen += [m["id"] for m in body["messages"]]
        before = body["next_before"]
        if not body["has_more"]:
            break

    assert seen == [m.pk for m in reversed(messages)]
    assert before is None
    oldest_reply = analyst_client.get(URL, {"phone_number": "+254712345678", "before": messages[2].pk}).json()
    assert [m["id"] for m in oldest_reply["messages"]] == [messages[1].pk, messages[0].pk]
    assert oldest_reply["messages"][0]["error_code"] == "131047"


@pytest.mark.django_db
def test_history_of_an_unknown_number_is_404(analyst_client):
    response = analyst_client.get(URL, {"phone_number": "+254799999999"})

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "NOT_FOUND",
            "message": "No conversation with this phone number.",
            "details": {"phone_number": "+254799999999"},
        }
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"phone_number": "12"}, {"phone_number": ["Not a valid phone number."]}),
        ({}, {"phone_number": ["This field is required."]}),
        (
            {"phone_number": "+254712345678", "limit": 0},
            {"limit": ["Ensure this value is greater than or equal to 1."]},
        ),
        ({"phone_number": "+254712345678", "before": "x"}, {"before": ["A valid integer is required."]}),
    ],
)
def test_history_rejects_bad_parameters_with_400(analyst_client, params, fields):
    response = analyst_client.get(URL, params)

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "VALIDATION_ERROR", "message": "Invalid input.", "details": {"fields": fields}}
    }


@pytest.mark.django_db
def test_before_must_be_a_message_of_the_conversation(analyst_client, conversation):
    other = MessageFactory(contact=ContactFactory())

    response = analyst_client.get(URL, {"phone_number": "+254712345678", "before": other.pk})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_one_message_shows_its_status_timestamps_and_error(analyst_client, conversation):
    _, messages = conversation

    response = analyst_client.get(f"/api/v1/whatsapp/messages/{messages[1].pk}/")

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("id", "direction", "status", "error_code", "created_at", "statuses")} == {
        "id": messages[1].pk,
        "direction": "out",
        "status": "failed",
        "error_code": "131047",
        "created_at": "2026-11-30T09:01:00Z",
        "statuses": [],
    }
    missing = analyst_client.get("/api/v1/whatsapp/messages/999999999/")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "NOT_FOUND", "message": "No message with this id.", "details": {"id": 999999999}}
    }
