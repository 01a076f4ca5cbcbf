"""ACS channel, inbound side: secret check, Event Grid / CloudEvents handshakes, parsing every event kind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.test import RequestFactory

from apps.channels.base import (
    DeliveryStatus,
    InboundEvent,
    MalformedPayload,
    Media,
    MessageKind,
    SignatureError,
    StatusEvent,
)
from apps.channels.registry import channel_get
from tests.emulators.acs_events import (
    CHANNEL_ID,
    WEBHOOK_SECRET,
    as_cloud_event,
    received_event,
    status_event,
    validation_event,
    webhook_url,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "acs"
RECEIVED_AT = datetime(2026, 11, 30, 18, 30, 19, tzinfo=UTC)


def fixture(name: str):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def post(payload, *, secret: str | None = WEBHOOK_SECRET, content_type: str = "application/json", raw=None):
    body = raw if raw is not None else json.dumps(payload)
    url = webhook_url(secret) if secret is not None else "/api/v1/whatsapp/webhook/"
    return RequestFactory().post(url, data=body, content_type=content_type)


def parse(payload, **kw) -> list[InboundEvent | StatusEvent]:
    return channel_get("acs").parse(post(payload, **kw))


@pytest.fixture(autouse=True)
def _acs_settings(settings):
    settings.ACS_ENABLED = True
    settings.ACS_EVENTGRID_SECRET = [WEBHOOK_SECRET]
    settings.DEBUG = False
    settings.SKIP_WEBHOOK_SIGNATURE_VERIFICATION = False


# --- verify ---------------------------------------------------------------------------------------
def test_the_configured_secret_is_accepted():
    channel_get("acs").verify(post([], secret=WEBHOOK_SECRET))


def test_every_secret_is_accepted_while_one_is_rotated(settings):
    settings.ACS_EVENTGRID_SECRET = ["old-secret-1", "new-secret-2"]
    channel = channel_get("acs")
    channel.verify(post([], secret="old-secret-1"))
    channel.verify(post([], secret="new-secret-2"))
    with pytest.raises(SignatureError):
        channel.verify(post([], secret=WEBHOOK_SECRET))


@pytest.mark.parametrize("secret", ["wrong", WEBHOOK_SECRET[:-1], WEBHOOK_SECRET + "x", "", None])
def test_a_wrong_or_missing_secret_is_refused(secret):
    with pytest.raises(SignatureError):
        channel_get("acs").verify(post([], secret=secret))


def test_no_configured_secret_refuses_everything(settings):
    settings.ACS_EVENTGRID_SECRET = []
    with pytest.raises(SignatureError, match="not configured"):
        channel_get("acs").verify(post([], secret=""))


def test_skipping_verification_is_ignored_unless_debug(settings):
    settings.SKIP_WEBHOOK_SIGNATURE_VERIFICATION = True
    with pytest.raises(SignatureError):
        channel_get("acs").verify(post([], secret="wrong"))
    settings.DEBUG = True
    channel_get("acs").verify(post([], secret="wrong"))


def test_the_secret_is_compared_in_constant_time_against_every_configured_secret(settings, monkeypatch):
    """No early exit on a match: each configured secret goes through hmac.compare_digest (a spy on the stdlib)."""
    import hmac

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    settings.ACS_EVENTGRID_SECRET = ["first-secret", "second-secret", "third-secret"]
    channel_get("acs").verify(post([], secret="first-secret"))
    assert calls == [b"first-secret", b"second-secret", b"third-secret"]


# --- handshakes -----------------------------------------------------------------------------------
def test_subscription_validation_is_answered_with_the_code():
    response = channel_get("acs").handshake(post(fixture("subscription_validation")))
    assert response.status_code == 200
    assert json.loads(response.content) == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}


def test_subscription_validation_as_a_cloud_event_is_answered_too():
    response = channel_get("acs").handshake(post(as_cloud_event(validation_event("abc-123"))))
    assert json.loads(response.content) == {"validationResponse": "abc-123"}


def test_cloudevents_options_handshake_echoes_the_origin():
    request = RequestFactory().options(webhook_url(), HTTP_WEBHOOK_REQUEST_ORIGIN="eventgrid.azure.net")
    response = channel_get("acs").handshake(request)
    assert response.status_code == 200
    assert response["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert response["WebHook-Allowed-Rate"] == "*"


def test_options_handshake_never_echoes_a_hostile_origin():
    request = RequestFactory().options(webhook_url(), HTTP_WEBHOOK_REQUEST_ORIGIN="evil.example\r\nSet-Cookie: a")
    response = channel_get("acs").handshake(request)
    assert response["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_an_ordinary_delivery_is_not_a_handshake():
    assert channel_get("acs").handshake(post(fixture("received_text"))) is None
    assert channel_get("acs").handshake(post(None, raw="not json")) is None


# --- parse: every message kind --------------------------------------------------------------------
def test_text_message_is_parsed():
    payload = fixture("received_text")
    [event] = parse(payload)
    assert event == InboundEvent(
        channel="acs",
        provider_message_id="aaaaaaaa-0000-4000-8000-000000000001",
        sender_phone="+254712345678",
        sender_bsuid="",
        received_at=RECEIVED_AT,
        kind=MessageKind.TEXT,
        text="Hola, ¿cuándo es la conferencia?",
        recipient=CHANNEL_ID,
    )
    assert event.raw == payload[0]


def test_image_message_carries_media_and_caption():
    [event] = parse(fixture("received_image"))
    assert event.kind is MessageKind.IMAGE
    assert event.sender_phone == "+14254360097"
    assert event.media == Media(
        mime_type="image/jpeg", provider_id="bbbbbbbb-0000-4000-8000-000000000001", caption="This is a media caption"
    )
    assert event.text == "This is a media caption"


def test_document_message_sent_as_a_bare_object_is_parsed():
    [event] = parse(fixture("received_document"))
    assert event.kind is MessageKind.DOCUMENT
    assert event.media == Media(
        mime_type="application/pdf",
        provider_id="bbbbbbbb-0000-4000-8000-000000000002",
        file_name="recibo.pdf",
        caption="Mi recibo",
    )


@pytest.mark.parametrize(
    ("name", "kind", "mime", "media_id"),
    [
        ("received_audio", MessageKind.AUDIO, "audio/ogg; codecs=opus", "bbbbbbbb-0000-4000-8000-000000000003"),
        ("received_video", MessageKind.VIDEO, "video/mp4", "bbbbbbbb-0000-4000-8000-000000000004"),
        ("received_sticker", MessageKind.STICKER, "image/webp", "bbbbbbbb-0000-4000-8000-000000000005"),
    ],
)
def test_audio_video_and_sticker_carry_media(name, kind, mime, media_id):
    [event] = parse(fixture(name))
    assert (event.kind, event.media.mime_type, event.media.provider_id) == (kind, mime, media_id)


def test_template_button_press_gives_text_payload_and_context():
    [event] = parse(fixture("received_button"))
    assert (event.kind, event.text, event.payload) == (MessageKind.BUTTON, "Sí, confirmar", "confirm-booking")
    assert event.reply_to == "cccccccc-0000-4000-8000-000000000001"


def test_interactive_button_reply_and_list_reply():
    [button] = parse(fixture("received_interactive_button_reply"))
    [row] = parse(fixture("received_interactive_list_reply"))
    assert (button.kind, button.payload, button.text) == (MessageKind.INTERACTIVE, "slot-10am", "10:00")
    assert (row.kind, row.payload, row.text) == (MessageKind.INTERACTIVE, "kayak", "Kayak")


def test_reaction_names_the_message_reacted_to():
    [event] = parse(fixture("received_reaction"))
    assert (event.kind, event.text, event.reply_to) == (
        MessageKind.REACTION,
        "👍",
        "cccccccc-0000-4000-8000-000000000002",
    )


def test_location_gives_coordinates_and_name():
    [event] = parse(fixture("received_location"))
    assert (event.kind, event.latitude, event.longitude) == (MessageKind.LOCATION, -1.2921, 36.8219)
    assert event.text == "Nairobi — Kenyatta Ave"


def test_an_empty_from_keys_the_sender_on_the_bsuid():
    [event] = parse(fixture("received_bsuid_only"))
    assert (event.sender_phone, event.sender_bsuid, event.sender) == (
        "",
        "US.13491208655302741918",
        "US.13491208655302741918",
    )


def test_phone_and_bsuid_are_both_kept_when_both_are_given():
    [event] = parse([received_event(sender="254700000001", bsuid="KE.12345678901234567")])
    assert (event.sender_phone, event.sender_bsuid) == ("+254700000001", "KE.12345678901234567")


def test_unknown_message_type_is_kept_as_unknown_kind():
    [event] = parse([received_event(message_type="order", text=None)])
    assert event.kind is MessageKind.UNKNOWN


def test_the_event_id_stands_in_for_a_missing_message_id():
    event = received_event()
    del event["data"]["messageId"]
    [parsed] = parse([event])
    assert parsed.provider_message_id == event["id"]


# --- parse: statuses ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("status_sent", DeliveryStatus.SENT),
        ("status_delivered", DeliveryStatus.DELIVERED),
        ("status_read", DeliveryStatus.READ),
    ],
)
def test_status_updates_are_parsed(name, status):
    [event] = parse(fixture(name))
    assert event == StatusEvent(
        channel="acs",
        provider_message_id="dddddddd-0000-4000-8000-000000000001",
        status=status,
        occurred_at=RECEIVED_AT,
        recipient="+14254360097",
    )


def test_failed_status_carries_the_whatsapp_error_code_as_a_string():
    [event] = parse(fixture("status_failed"))
    assert (event.status, event.error_code, event.error_message) == (
        DeliveryStatus.FAILED,
        "131026",
        "Message Undeliverable.",
    )
    assert event.occurred_at == datetime(2026, 11, 30, 18, 42, 28, tzinfo=UTC)


def test_a_numeric_channel_code_becomes_a_string():
    event = status_event(message_id="m-1", status="Failed")
    event["data"]["error"] = {"channelCode": 131047, "channelMessage": "Re-engagement message"}
    [parsed] = parse([event])
    assert parsed.error_code == "131047"


def test_status_sent_to_a_bsuid_names_the_bsuid():
    [event] = parse([status_event(message_id="m-2", to="", to_bsuid="US.13491208655302741918")])
    assert event.recipient == "US.13491208655302741918"


# --- batches, CloudEvents and bad items -----------------------------------------------------------
def test_every_item_of_a_batch_is_parsed_in_order_and_unknown_types_skipped():
    events = parse(fixture("batch_mixed"))
    assert [type(event).__name__ for event in events] == ["InboundEvent", "StatusEvent", "InboundEvent"]
    assert [event.provider_message_id for event in events] == [
        "aaaaaaaa-0000-4000-8000-000000000001",
        "22222222-2222-2222-2222-222222222222",
        "aaaaaaaa-0000-4000-8000-000000000007",
    ]


def test_a_single_cloud_event_is_parsed():
    [event] = parse(fixture("cloudevent_received_text"), content_type="application/cloudevents+json")
    assert (event.provider_message_id, event.text) == (
        "aaaaaaaa-0000-4000-8000-000000000001",
        "Hola, ¿cuándo es la conferencia?",
    )


def test_a_cloudevents_batch_is_parsed():
    events = parse(fixture("cloudevents_batch"), content_type="application/cloudevents-batch+json")
    assert [(type(e).__name__, e.provider_message_id) for e in events] == [
        ("InboundEvent", "aaaaaaaa-0000-4000-8000-000000000002"),
        ("StatusEvent", "dddddddd-0000-4000-8000-000000000001"),
    ]


def test_bad_items_are_skipped_and_the_good_ones_kept():
    good = received_event(text="bien")
    no_sender = received_event(sender="", bsuid="")
    bad_status = status_event(message_id="m-3", status="Exploded")
    wrong_types = received_event()
    wrong_types["data"] = {"from": ["x"], "messageId": {"a": 1}, "messageType": 7}
    events = parse([42, "x", None, no_sender, bad_status, wrong_types, {"eventType": None}, good])
    assert [event.text for event in events] == ["bien"]


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff\xfe", b"42", b'"text"', b"null", b"[" * 100_000])
def test_a_body_that_is_not_an_object_or_a_list_is_malformed(raw):
    with pytest.raises(MalformedPayload):
        channel_get("acs").parse(post(None, raw=raw))


@pytest.mark.parametrize(
    "value", [None, True, 1e308, -1, "", "\x00", "x" * 100_000, [], {}, [{}], 10**30, "9" * 4000, {"id": None}]
)
def test_hostile_values_never_escape_as_exceptions(value):
    cases = []
    for field in ["from", "fromBSUID", "messageId", "content", "receivedTimestamp", "media", "interactive",
                  "location", "reaction", "button", "messageType", "to", "context", "channelType"]:  # fmt: skip
        event = received_event()
        event["data"][field] = value
        cases.append(event)
    for field in ["error", "receivedTimestamp", "status", "messageId", "to", "toBSUID"]:
        status = status_event(message_id="m")
        status["data"][field] = value
        cases.append(status)
    envelope = received_event()
    envelope["data"] = value
    cases.append(envelope)
    events = parse(cases)
    for event in events:
        assert "\x00" not in json.dumps(event.raw)
        assert len(getattr(event, "text", "")) <= 16_384
        assert len(event.provider_message_id) <= 200


def test_nul_characters_are_removed_from_text_and_raw():
    [event] = parse([received_event(text="ho\x00la")])
    assert event.text == "hola"
    assert event.raw["data"]["content"] == "hola"


@pytest.mark.parametrize(
    "timestamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "yesterday", "2999-01-01T00:00:00+00:00"]
)
def test_absurd_timestamps_fall_back_to_the_event_time_or_now(timestamp):
    event = received_event(received_at=timestamp)
    event["eventTime"] = "garbage"
    before = datetime.now(UTC)
    [parsed] = parse([event])
    assert before - timedelta(seconds=1) <= parsed.received_at <= datetime.now(UTC)


def test_event_grid_timestamps_with_seven_fractional_digits_are_read():
    [parsed] = parse([received_event(received_at="2026-11-30T18:30:22.1921716Z")])
    assert parsed.received_at == datetime(2026, 11, 30, 18, 30, 22, 192171, tzinfo=UTC)


def test_an_invalid_phone_in_from_without_bsuid_skips_the_item():
    assert parse([received_event(sender="12")]) == []


def test_a_bsuid_in_the_from_field_is_used_as_the_bsuid():
    [event] = parse([received_event(sender="US.13491208655302741918")])
    assert (event.sender_phone, event.sender_bsuid) == ("", "US.13491208655302741918")


def test_adapter_is_enabled_by_the_setting(settings):
    assert channel_get("acs").enabled() is True
    settings.ACS_ENABLED = False
    assert channel_get("acs").enabled() is False
