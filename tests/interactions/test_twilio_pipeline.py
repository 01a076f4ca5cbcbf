"""Twilio end to end: signed webhook → pipeline → reply through the Twilio emulator → status callbacks."""

from __future__ import annotations

import json

import pytest

from apps.interactions.models import Direction, Interaction, Message, MessageStatus
from tests.emulators.twilio import ACCOUNT_SID
from tests.emulators.twilio_requests import (
    FORM_CONTENT_TYPE,
    INBOUND_PATH,
    STATUS_PATH,
    twilio_inbound_form,
    twilio_post,
    twilio_signed,
    twilio_status_form,
)

pytestmark = pytest.mark.django_db(transaction=True)

EVENT_SID = "HX" + "e" * 32
RECEIVED_SID = "HX" + "f" * 32
PUBLIC = "https://relay.example.com"


@pytest.fixture
def twilio_pipeline(twilio_emulator, demo_templates, settings):
    """Twilio enabled against the emulator, with the demo templates mapped to Twilio Content SIDs."""
    settings.PUBLIC_BASE_URL = PUBLIC
    demo_templates.event_info.twilio_content_sid = EVENT_SID
    demo_templates.event_info.save()
    demo_templates.request_received.twilio_content_sid = RECEIVED_SID
    demo_templates.request_received.save()
    return twilio_emulator


def _replies():
    return list(Message.objects.filter(direction=Direction.OUTBOUND).order_by("id"))


def test_signed_twilio_message_is_answered_once_on_twilio(client, twilio_pipeline, drain):
    form = twilio_inbound_form(body="¿Cuándo es la conferencia?")
    response = twilio_post(client, INBOUND_PATH, form)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content == b"<Response></Response>"

    drain()

    [inbound] = Message.objects.filter(direction=Direction.INBOUND)
    assert (inbound.channel, inbound.provider_message_id, inbound.status) == ("twilio", form["MessageSid"], "processed")
    [reply] = _replies()
    [request] = twilio_pipeline.message_requests()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    values = dict(reply.template_parameters)
    assert request.form() == {
        "To": ["whatsapp:+254700000001"],
        "From": ["whatsapp:+14155238886"],
        "ContentSid": [EVENT_SID],
        "ContentVariables": [json.dumps({"1": values["nombre"], "2": values["tema"]}, ensure_ascii=False)],
        "StatusCallback": [f"{PUBLIC}/api/v1/whatsapp/webhook/twilio/status/"],
    }
    assert values["nombre"] == "Wanjiku"
    assert (reply.channel, reply.status, reply.template_name) == ("twilio", MessageStatus.SENT, "vea_event_info")
    assert reply.provider_message_id == twilio_pipeline.sent[0].sid
    assert reply.in_reply_to_id == inbound.pk


@pytest.mark.parametrize("tamper", ["missing", "forged", "altered"])
def test_unsigned_or_tampered_twilio_webhooks_are_refused(client, twilio_pipeline, tamper):
    form = twilio_inbound_form(body="hola")
    if tamper == "forged":
        body, headers = twilio_signed(INBOUND_PATH, form, auth_token="not-the-token")
    else:
        body, headers = twilio_signed(INBOUND_PATH, form)
    if tamper == "missing":
        headers = {}
    if tamper == "altered":
        body = body.replace("hola", "adios")
    response = client.post(INBOUND_PATH, data=body, content_type=FORM_CONTENT_TYPE, **headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert Message.objects.count() == 0
    assert twilio_pipeline.requests == []


def test_replayed_twilio_delivery_gets_one_reply(client, twilio_pipeline, drain):
    form = twilio_inbound_form(body="hola")
    assert twilio_post(client, INBOUND_PATH, form).status_code == 200
    assert twilio_post(client, INBOUND_PATH, form).status_code == 200
    drain()
    assert twilio_post(client, INBOUND_PATH, form).status_code == 200
    drain()

    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1
    assert len(_replies()) == 1
    assert len(twilio_pipeline.message_requests()) == 1


def test_n_deliveries_get_n_replies(client, twilio_pipeline, drain):
    senders = ["+254700000011", "+254700000012", "+254700000013"]
    forms = [twilio_inbound_form(body="¿Cuándo es la conferencia?", sender=s) for s in senders] + [
        twilio_inbound_form(body="¿Y el evento de mañana?", sender=senders[0])
    ]
    for form in forms:
        assert twilio_post(client, INBOUND_PATH, form).status_code == 200
    drain()

    inbound = Message.objects.filter(direction=Direction.INBOUND)
    assert inbound.count() == 4
    replies = _replies()
    assert sorted(r.in_reply_to_id for r in replies) == sorted(m.pk for m in inbound)
    assert {r.channel for r in replies} == {"twilio"}
    sent_to = sorted(r.form()["To"][0] for r in twilio_pipeline.message_requests())
    assert sent_to == sorted(f"whatsapp:{s}" for s in [*senders, senders[0]])


def test_status_callbacks_out_of_order_only_move_forward(client, twilio_pipeline, drain):
    twilio_post(client, INBOUND_PATH, twilio_inbound_form(body="hola"))
    drain()
    [reply] = _replies()
    sid = reply.provider_message_id

    for status in ("read", "delivered", "sent", "sending"):
        response = twilio_post(client, STATUS_PATH, twilio_status_form(message_sid=sid, status=status))
        assert response.status_code == 200
        assert response.content == b"<Response></Response>"

    reply.refresh_from_db()
    assert reply.status == MessageStatus.READ
    assert reply.read_at is not None and reply.delivered_at is not None


def test_status_for_an_unknown_message_is_acknowledged(client, twilio_pipeline):
    response = twilio_post(client, STATUS_PATH, twilio_status_form(message_sid="SM" + "0" * 32, status="delivered"))
    assert response.status_code == 200


def test_undelivered_outside_the_window_fails_the_reply_and_names_the_template(client, twilio_pipeline, drain):
    twilio_post(client, INBOUND_PATH, twilio_inbound_form(body="hola"))
    drain()
    [reply] = _replies()

    form = twilio_status_form(message_sid=reply.provider_message_id, status="undelivered", error_code="63016")
    assert twilio_post(client, STATUS_PATH, form).status_code == 200

    reply.refresh_from_db()
    assert (reply.status, reply.error_code) == (MessageStatus.FAILED, "63016")
    assert "vea_request_received" in reply.error_message
    interaction = Interaction.objects.get(reply_id=reply.pk)
    assert interaction.success is False
    assert interaction.context["window_closed"] is True


def test_window_closed_answer_on_send_fails_without_resending(client, twilio_pipeline, drain):
    twilio_pipeline.fail_with_code(63016, status=400, message="Outside the allowed window")
    twilio_post(client, INBOUND_PATH, twilio_inbound_form(body="hola"))
    drain()

    [reply] = _replies()
    assert (reply.status, reply.error_code, reply.attempts) == (MessageStatus.FAILED, "63016", 1)
    assert "vea_request_received" in reply.error_message
    assert len(twilio_pipeline.refused) == 1 and twilio_pipeline.sent == []


def test_rate_limited_send_is_retried_and_delivered_once(client, twilio_pipeline, drain):
    twilio_pipeline.fail_with_code(63018, status=429, times=2, headers={"Retry-After": "0"})
    twilio_post(client, INBOUND_PATH, twilio_inbound_form(body="hola"))
    drain()

    [reply] = _replies()
    assert (reply.status, reply.attempts) == (MessageStatus.SENT, 3)
    assert len(twilio_pipeline.sent) == 1
    assert [r.status for r in twilio_pipeline.refused] == [429, 429]


def test_timeout_after_sending_is_marked_unknown_and_not_resent(client, twilio_pipeline, drain, settings):
    settings.CHANNEL_HTTP_TIMEOUT_SECONDS = 0.5
    twilio_pipeline.fail_next(201, delay=2.0, after_processing=True, body={"sid": "SM" + "1" * 32})
    twilio_post(client, INBOUND_PATH, twilio_inbound_form(body="hola"))
    drain()

    [reply] = _replies()
    assert reply.status == MessageStatus.UNKNOWN
    assert len(twilio_pipeline.sent) == 1


def test_inbound_image_is_downloaded_with_twilio_credentials(client, twilio_pipeline, drain, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    url = twilio_pipeline.add_media(b"\xff\xd8\xff-jpeg", "image/jpeg")
    form = twilio_inbound_form(
        body="Mi recibo", MessageType="image", NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg"
    )
    twilio_post(client, INBOUND_PATH, form)
    drain()

    [inbound] = Message.objects.filter(direction=Direction.INBOUND)
    assert inbound.kind == "image"
    assert (inbound.media["url"], inbound.media["size"], inbound.media["error"]) == (url, 8, "")
    assert (tmp_path / inbound.media["stored_path"]).read_bytes() == b"\xff\xd8\xff-jpeg"
    [download] = [r for r in twilio_pipeline.requests if r.method == "GET" and "/Media/" in r.path]
    assert download.headers["Authorization"].startswith("Basic ")
