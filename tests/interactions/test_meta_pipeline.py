"""Meta Cloud API end to end: GET challenge, signed webhook → pipeline → reply through the Graph emulator →
status webhooks."""

from __future__ import annotations

import pytest

from apps.interactions.models import Contact, Direction, Interaction, Message, MessageStatus
from tests.emulators.meta import ACCESS_TOKEN, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.emulators.meta_events import (
    WEBHOOK_PATH,
    meta_delivery,
    meta_post,
    meta_signed,
    meta_status,
    meta_text_message,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def meta_pipeline(meta_emulator, demo_templates):
    return meta_emulator


def _replies():
    return list(Message.objects.filter(direction=Direction.OUTBOUND).order_by("id"))


def test_subscription_challenge_is_answered_through_the_webhook(client, meta_pipeline):
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}
    response = client.get(WEBHOOK_PATH, query)
    assert (response.status_code, response.content) == (200, b"1158201444")


def test_subscription_challenge_with_a_wrong_token_is_forbidden(client, meta_pipeline):
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "guess"}
    response = client.get(WEBHOOK_PATH, query)
    assert response.status_code == 403
    assert b"1158201444" not in response.content


def test_signed_meta_message_is_answered_once_on_meta(client, meta_pipeline, drain):
    message = meta_text_message(body="¿Cuándo es la conferencia?")
    response = meta_post(client, meta_delivery(messages=[message]))
    assert response.status_code == 200

    drain()

    [inbound] = Message.objects.filter(direction=Direction.INBOUND)
    assert (inbound.channel, inbound.provider_message_id, inbound.status) == ("meta", message["id"], "processed")
    [reply] = _replies()
    [request] = meta_pipeline.message_requests()
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    values = dict(reply.template_parameters)
    assert values["nombre"] == "Wanjiku"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "254700000001",
        "type": "template",
        "template": {
            "name": "vea_event_info",
            "language": {"code": "es"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": values["nombre"]},
                        {"type": "text", "text": values["tema"]},
                    ],
                }
            ],
        },
    }
    assert (reply.channel, reply.status, reply.in_reply_to_id) == ("meta", MessageStatus.SENT, inbound.pk)
    assert reply.provider_message_id.startswith("wamid.")


@pytest.mark.parametrize("tamper", ["missing", "forged", "altered"])
def test_unsigned_or_tampered_meta_webhooks_are_refused(client, meta_pipeline, tamper):
    payload = meta_delivery(messages=[meta_text_message(body="hola")])
    if tamper == "forged":
        body, headers = meta_signed(payload, app_secret="not-the-secret")
    else:
        body, headers = meta_signed(payload)
    if tamper == "missing":
        headers = {}
    if tamper == "altered":
        body = body.replace(b"hola", b"HOLA")
    response = client.post(WEBHOOK_PATH, data=body, content_type="application/json", **headers)
    assert response.status_code == 403
    assert Message.objects.count() == 0
    assert meta_pipeline.requests == []


def test_replayed_meta_delivery_gets_one_reply(client, meta_pipeline, drain):
    payload = meta_delivery(messages=[meta_text_message(body="¿Cuándo es la conferencia?")])
    assert meta_post(client, payload).status_code == 200
    assert meta_post(client, payload).status_code == 200
    drain()
    assert meta_post(client, payload).status_code == 200
    drain()

    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1
    assert len(_replies()) == 1
    assert len(meta_pipeline.message_requests()) == 1


def test_batch_of_n_messages_gets_n_replies(client, meta_pipeline, drain):
    messages = [
        meta_text_message(body="¿Cuándo es la conferencia?", sender="254700000021"),
        meta_text_message(body="¿Cuándo es la conferencia?", sender="254700000022"),
        meta_text_message(body="¿Y el evento?", sender="254700000021"),
        meta_text_message(body="Quiero ir a la conferencia", sender="254700000023"),
    ]
    assert meta_post(client, meta_delivery(messages=messages)).status_code == 200
    drain()

    inbound = Message.objects.filter(direction=Direction.INBOUND)
    assert sorted(inbound.values_list("provider_message_id", flat=True)) == sorted(m["id"] for m in messages)
    replies = _replies()
    assert sorted(r.in_reply_to_id for r in replies) == sorted(m.pk for m in inbound)
    sent_to = sorted(r.json()["to"] for r in meta_pipeline.message_requests())
    assert sent_to == sorted(m["from"] for m in messages)


def test_statuses_out_of_order_only_move_forward(client, meta_pipeline, drain):
    meta_post(client, meta_delivery(messages=[meta_text_message(body="¿Cuándo es la conferencia?")]))
    drain()
    [reply] = _replies()
    wamid = reply.provider_message_id

    statuses = [meta_status(message_id=wamid, status=s) for s in ("read", "delivered", "sent")]
    assert meta_post(client, meta_delivery(statuses=statuses)).status_code == 200
    assert (
        meta_post(client, meta_delivery(statuses=[meta_status(message_id=wamid, status="played")])).status_code == 200
    )

    reply.refresh_from_db()
    assert reply.status == MessageStatus.READ
    assert reply.delivered_at is not None and reply.read_at is not None


def test_failed_status_with_131047_records_the_closed_window_and_names_the_template(client, meta_pipeline, drain):
    meta_post(client, meta_delivery(messages=[meta_text_message(body="¿Cuándo es la conferencia?")]))
    drain()
    [reply] = _replies()

    failed = meta_status(message_id=reply.provider_message_id, status="failed", error_code=131047)
    assert meta_post(client, meta_delivery(statuses=[failed])).status_code == 200

    reply.refresh_from_db()
    assert (reply.status, reply.error_code) == (MessageStatus.FAILED, "131047")
    assert "vea_request_received" in reply.error_message
    assert Interaction.objects.get(reply_id=reply.pk).context["window_closed"] is True


def test_failed_status_with_131050_opts_the_contact_out_of_marketing(client, meta_pipeline, drain):
    meta_post(client, meta_delivery(messages=[meta_text_message(body="¿Cuándo es la conferencia?")]))
    drain()
    [reply] = _replies()

    failed = meta_status(message_id=reply.provider_message_id, status="failed", error_code=131050)
    meta_post(client, meta_delivery(statuses=[failed]))

    assert Contact.objects.get(pk=reply.contact_id).marketing_opted_out_at is not None


def test_window_closed_answer_on_send_fails_without_resending(client, meta_pipeline, drain):
    meta_pipeline.fail_with_code(131047, status=400, message="Re-engagement message")
    meta_post(client, meta_delivery(messages=[meta_text_message(body="¿Cuándo es la conferencia?")]))
    drain()

    [reply] = _replies()
    assert (reply.status, reply.error_code, reply.attempts) == (MessageStatus.FAILED, "131047", 1)
    assert "vea_request_received" in reply.error_message
    assert meta_pipeline.message_requests() == []


@pytest.mark.parametrize("code", [130429, 131056])
def test_rate_limited_send_is_retried_and_delivered_once(client, meta_pipeline, drain, code):
    meta_pipeline.fail_with_code(code, status=400, times=2, headers={"Retry-After": "0"})
    meta_post(client, meta_delivery(messages=[meta_text_message(body="¿Cuándo es la conferencia?")]))
    drain()

    [reply] = _replies()
    assert (reply.status, reply.attempts) == (MessageStatus.SENT, 3)
    assert len(meta_pipeline.message_requests()) == 1
    assert len(meta_pipeline.refused) == 2


def test_timeout_after_sending_is_marked_unknown_and_not_resent(client, meta_pipeline, drain, settings):
    settings.CHANNEL_HTTP_TIMEOUT_SECONDS = 0.5
    meta_pipeline.fail_next(200, delay=2.0, after_processing=True, body={"messages": [{"id": "wamid.LATE"}]})
    meta_post(client, meta_delivery(messages=[meta_text_message(body="¿Cuándo es la conferencia?")]))
    drain()

    [reply] = _replies()
    assert reply.status == MessageStatus.UNKNOWN
    assert len(meta_pipeline.message_requests()) == 1


def test_inbound_voice_note_is_downloaded_through_the_graph_api(client, meta_pipeline, drain, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    media_id = meta_pipeline.add_media(b"OggS-voice", "audio/ogg")
    message = meta_text_message()
    message.pop("text")
    message.update(type="audio", audio={"id": media_id, "mime_type": "audio/ogg; codecs=opus", "voice": True})
    meta_post(client, meta_delivery(messages=[message]))
    drain()

    [inbound] = Message.objects.filter(direction=Direction.INBOUND)
    assert inbound.kind == "audio"
    assert (inbound.media["size"], inbound.media["error"]) == (10, "")
    assert (tmp_path / inbound.media["stored_path"]).read_bytes() == b"OggS-voice"
    lookups = [r.path for r in meta_pipeline.requests if r.method == "GET"]
    assert lookups == [f"/v21.0/{media_id}", f"/media-download/{media_id}"]
