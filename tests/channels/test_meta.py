"""The Meta Cloud API adapter: the GET challenge, X-Hub-Signature-256, parsing of every message type, batch
and status, sends and their error codes, media download (auth, cap, SSRF) and the configuration check —
against the Graph emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from django.test import RequestFactory

from apps.channels.base import (
    ChannelError,
    DeliveryStatus,
    InboundEvent,
    MalformedPayload,
    Media,
    MessageKind,
    OutboundMessage,
    SignatureError,
    StatusEvent,
    TemplateParameter,
)
from apps.channels.registry import channel_get
from tests.emulators.base import Emulator
from tests.emulators.meta import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.emulators.meta_events import WEBHOOK_PATH, meta_fixture, meta_signature, meta_signed

TS = datetime.fromtimestamp(1749416383, tz=UTC)
WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCNUQ5RTdGMEE"


@pytest.fixture
def meta_settings(settings):
    settings.META_ENABLED = True
    settings.META_APP_SECRET = APP_SECRET
    settings.META_VERIFY_TOKEN = VERIFY_TOKEN
    settings.META_ACCESS_TOKEN = ACCESS_TOKEN
    settings.META_PHONE_NUMBER_ID = PHONE_NUMBER_ID
    return settings


def _post(payload, **kwargs):
    body, headers = meta_signed(payload, **kwargs)
    return RequestFactory().post(WEBHOOK_PATH, data=body, content_type="application/json", **headers)


def _parse(payload):
    channel = channel_get("meta")
    request = _post(payload)
    channel.verify(request)
    return channel.parse(request)


def _inbound(number: int, **kwargs) -> InboundEvent:
    fields = {
        "channel": "meta",
        "provider_message_id": f"{WAMID}{number:04d}",
        "sender_phone": "+16505551234",
        "sender_bsuid": "",
        "received_at": TS,
        "profile_name": "Sheena Nelson",
        "recipient": PHONE_NUMBER_ID,
    }
    fields.update(kwargs)
    return InboundEvent(**fields)


# --- GET challenge ------------------------------------------------------------------------------------


def test_subscription_challenge_is_echoed_with_the_right_token(meta_settings):
    request = RequestFactory().get(
        WEBHOOK_PATH, {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}
    )
    response = channel_get("meta").handshake(request)
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "wrong"},
        {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {},
    ],
)
def test_subscription_challenge_with_a_wrong_token_is_refused(meta_settings, query):
    response = channel_get("meta").handshake(RequestFactory().get(WEBHOOK_PATH, query))
    assert (response.status_code, response.content) == (403, b"Forbidden")


def test_challenge_is_refused_when_no_verify_token_is_configured(meta_settings):
    meta_settings.META_VERIFY_TOKEN = ""
    request = RequestFactory().get(
        WEBHOOK_PATH, {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": ""}
    )
    assert channel_get("meta").handshake(request).status_code == 403


def test_post_deliveries_are_not_handshakes(meta_settings):
    assert channel_get("meta").handshake(_post(meta_fixture("text"))) is None


# --- signatures ---------------------------------------------------------------------------------------


def test_signed_delivery_is_accepted(meta_settings):
    channel_get("meta").verify(_post(meta_fixture("text")))


def test_delivery_without_signature_is_refused(meta_settings):
    request = RequestFactory().post(
        WEBHOOK_PATH, data=json.dumps(meta_fixture("text")), content_type="application/json"
    )
    with pytest.raises(SignatureError, match="missing"):
        channel_get("meta").verify(request)


def test_delivery_signed_with_another_secret_is_refused(meta_settings):
    with pytest.raises(SignatureError, match="does not match"):
        channel_get("meta").verify(_post(meta_fixture("text"), app_secret="forged"))


def test_delivery_with_altered_body_is_refused(meta_settings):
    body, headers = meta_signed(meta_fixture("text"))
    tampered = body.replace(b"another color", b"a free room!!")
    request = RequestFactory().post(WEBHOOK_PATH, data=tampered, content_type="application/json", **headers)
    with pytest.raises(SignatureError):
        channel_get("meta").verify(request)


def test_reserialised_json_does_not_verify(meta_settings):
    """The HMAC covers the raw bytes: the same JSON with other spacing is another message."""
    payload = meta_fixture("text")
    signature = meta_signature(json.dumps(payload, separators=(",", ":")).encode())
    request = RequestFactory().post(
        WEBHOOK_PATH, data=json.dumps(payload), content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )
    with pytest.raises(SignatureError):
        channel_get("meta").verify(request)


@pytest.mark.parametrize("header", ["sha1=abc", "sha256=", "sha256=" + "g" * 64, "sha256=" + "a" * 63, "a" * 64])
def test_malformed_signature_header_is_refused(meta_settings, header):
    request = RequestFactory().post(
        WEBHOOK_PATH, data=b"{}", content_type="application/json", HTTP_X_HUB_SIGNATURE_256=header
    )
    with pytest.raises(SignatureError):
        channel_get("meta").verify(request)


def test_missing_app_secret_refuses_every_delivery(meta_settings):
    request = _post(meta_fixture("text"))
    meta_settings.META_APP_SECRET = ""
    with pytest.raises(SignatureError, match="not configured"):
        channel_get("meta").verify(request)


# --- parsing ------------------------------------------------------------------------------------------


def test_text_message_is_parsed(meta_settings):
    [event] = _parse(meta_fixture("text"))
    assert event == _inbound(1, kind=MessageKind.TEXT, text="Does it come in another color?")
    assert event.raw["type"] == "text"


@pytest.mark.parametrize(
    ("fixture", "number", "kind", "media"),
    [
        (
            "image",
            2,
            MessageKind.IMAGE,
            Media(mime_type="image/jpeg", provider_id="1003383421387256", caption="My receipt"),
        ),
        ("audio", 3, MessageKind.AUDIO, Media(mime_type="audio/ogg; codecs=opus", provider_id="1003383421387257")),
        (
            "document",
            4,
            MessageKind.DOCUMENT,
            Media(
                mime_type="application/pdf", provider_id="1003383421387258", file_name="invoice.pdf", caption="Invoice"
            ),
        ),
        ("video", 5, MessageKind.VIDEO, Media(mime_type="video/mp4", provider_id="1003383421387259")),
        ("sticker", 6, MessageKind.STICKER, Media(mime_type="image/webp", provider_id="1003383421387260")),
    ],
)
def test_media_message_is_parsed_with_its_media_id(meta_settings, fixture, number, kind, media):
    [event] = _parse(meta_fixture(fixture))
    assert event == _inbound(number, kind=kind, text=media.caption, media=media)


def test_button_reply_is_parsed(meta_settings):
    [event] = _parse(meta_fixture("button_reply"))
    assert event == _inbound(
        7, kind=MessageKind.INTERACTIVE, text="Snorkelling", payload="book_snorkelling", reply_to="wamid.ORIGINAL0001"
    )


def test_list_reply_is_parsed(meta_settings):
    [event] = _parse(meta_fixture("list_reply"))
    assert event == _inbound(
        8, kind=MessageKind.INTERACTIVE, text="10:00", payload="slot_10", reply_to="wamid.ORIGINAL0002"
    )


def test_template_quick_reply_button_is_parsed(meta_settings):
    [event] = _parse(meta_fixture("template_button"))
    assert event == _inbound(
        9, kind=MessageKind.BUTTON, text="Confirm", payload="CONFIRM_123", reply_to="wamid.ORIGINAL0003"
    )


def test_location_is_parsed(meta_settings):
    [event] = _parse(meta_fixture("location"))
    assert event == _inbound(10, kind=MessageKind.LOCATION, text="Nyali Beach", latitude=-4.0435, longitude=39.6682)


def test_reaction_is_parsed_with_the_message_it_reacts_to(meta_settings):
    [event] = _parse(meta_fixture("reaction"))
    assert event == _inbound(11, kind=MessageKind.REACTION, text="👍", reply_to="wamid.ORIGINAL0004")


@pytest.mark.parametrize(("fixture", "number"), [("contacts_message", 12), ("unsupported", 13)])
def test_untyped_messages_are_kept_as_unknown(meta_settings, fixture, number):
    [event] = _parse(meta_fixture(fixture))
    assert event == _inbound(number, kind=MessageKind.UNKNOWN)


def test_sender_without_wa_id_is_identified_by_user_id(meta_settings):
    [event] = _parse(meta_fixture("bsuid_text"))
    assert event == _inbound(
        14, sender_phone="", sender_bsuid="US.13491208655302741918", profile_name="Anon", text="Hi from a username user"
    )


def test_items_with_ids_too_long_to_store_are_skipped(meta_settings):
    payload = meta_fixture("batch")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["id"] = "wamid." + "A" * 300
    events = _parse(payload)
    assert [e.provider_message_id for e in events][:2] == [f"{WAMID}0021", f"{WAMID}0022"]


def test_a_user_id_that_is_not_a_bsuid_is_ignored(meta_settings):
    payload = meta_fixture("text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["from_user_id"] = "x" * 500
    [event] = _parse(payload)
    assert (event.sender_phone, event.sender_bsuid) == ("+16505551234", "")


def test_every_item_of_a_batch_is_parsed_in_order(meta_settings):
    events = _parse(meta_fixture("batch"))
    assert [(type(e).__name__, e.provider_message_id) for e in events] == [
        ("InboundEvent", f"{WAMID}0020"),
        ("InboundEvent", f"{WAMID}0021"),
        ("InboundEvent", f"{WAMID}0022"),
        ("StatusEvent", "wamid.OUT0001"),
    ]
    assert [(e.sender_phone, e.profile_name, e.text) for e in events[:3]] == [
        ("+16505551234", "Sheena Nelson", "first"),
        ("+16505550000", "Other", "second"),
        ("+16505551234", "Sheena Nelson", "third"),
    ]


STATUS_ID = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("status_sent", DeliveryStatus.SENT),
        ("status_delivered", DeliveryStatus.DELIVERED),
        ("status_read", DeliveryStatus.READ),
    ],
)
def test_status_is_parsed(meta_settings, fixture, status):
    [event] = _parse(meta_fixture(fixture))
    assert event == StatusEvent(
        channel="meta",
        provider_message_id=STATUS_ID,
        status=status,
        occurred_at=datetime.fromtimestamp(1749416400, tz=UTC),
        recipient="+16505551234",
    )


def test_failed_status_carries_the_error_code_as_a_string(meta_settings):
    [event] = _parse(meta_fixture("status_failed"))
    assert event == StatusEvent(
        channel="meta",
        provider_message_id=STATUS_ID,
        status=DeliveryStatus.FAILED,
        occurred_at=datetime.fromtimestamp(1749416400, tz=UTC),
        error_code="131047",
        error_message="Message failed to send because more than 24 hours have passed since the customer last replied "
        "to this number.",
        recipient="+16505551234",
    )


def test_played_status_is_ignored(meta_settings):
    assert _parse(meta_fixture("status_played")) == []


def test_account_level_errors_are_logged_not_parsed(meta_settings, caplog):
    assert _parse(meta_fixture("waba_error")) == []
    assert "130429" in caplog.text


def test_hostile_payload_yields_only_the_readable_items(meta_settings):
    events = _parse(meta_fixture("hostile"))
    assert [(e.provider_message_id, getattr(e, "text", None)) for e in events] == [
        ("wamid.GOOD", ""),
        ("wamid.OK", "survivor"),
        ("wamid.S2", None),
    ]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"entry": 5}', b"\xff\xfe"])
def test_unreadable_body_is_malformed(meta_settings, body):
    with pytest.raises(MalformedPayload):
        _parse(body)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_number_constants_are_malformed(meta_settings, constant):
    body = b'{"object": "whatsapp_business_account", "entry": [{"x": ' + constant + b"}]}"
    with pytest.raises(MalformedPayload):
        _parse(body)


def test_nul_characters_are_removed_from_text_and_raw(meta_settings):
    payload = meta_fixture("text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "ho\x00la"
    [event] = _parse(payload)
    assert event.text == "hola"
    assert event.raw["text"]["body"] == "hola"


def test_lone_surrogates_are_replaced_so_the_payload_can_be_stored(meta_settings):
    body = json.dumps(meta_fixture("text")).replace("another color", "\\ud800 color").encode()
    body = body.replace(b'"type": "text"', b'"\\udfff": 1, "type": "text"')
    [event] = _parse(body)
    assert event.text == "Does it come in \ufffd color?"
    assert "\ufffd" in event.raw


def test_other_webhook_objects_are_ignored(meta_settings):
    assert _parse({"object": "page", "entry": [{"changes": [{"field": "feed", "value": {}}]}]}) == []


# --- send ---------------------------------------------------------------------------------------------


def _outbound(**kwargs) -> OutboundMessage:
    return OutboundMessage(to="+254700000001", idempotency_key="k-1", **kwargs)


def _sent(meta_emulator):
    [request] = meta_emulator.message_requests()
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    return request.json()


def test_text_is_sent_without_link_preview(meta_emulator):
    result = channel_get("meta").send(_outbound(text="Hola"))
    assert _sent(meta_emulator) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "254700000001",
        "type": "text",
        "text": {"preview_url": False, "body": "Hola"},
    }
    assert result.provider_message_id.startswith("wamid.")


def test_template_is_sent_with_a_body_component_list(meta_emulator):
    channel_get("meta").send(
        _outbound(
            kind=MessageKind.TEMPLATE,
            template_name="booking_confirmation",
            template_language="en_US",
            template_parameters=(TemplateParameter("name", "Jane"), TemplateParameter("slot", "Snorkelling 10:00")),
        )
    )
    assert _sent(meta_emulator) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "254700000001",
        "type": "template",
        "template": {
            "name": "booking_confirmation",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Jane"}, {"type": "text", "text": "Snorkelling 10:00"}],
                }
            ],
        },
    }


def test_named_template_parameters_carry_parameter_name(meta_emulator):
    meta_emulator.named_templates.add("welcome")
    channel_get("meta").send(
        _outbound(
            kind=MessageKind.TEMPLATE,
            template_name="welcome",
            template_language="es",
            template_parameters=(TemplateParameter("first_name", "Jane"),),
            template_named_parameters=True,
        )
    )
    assert _sent(meta_emulator)["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Jane"}]}
    ]


def test_template_without_parameters_has_no_components(meta_emulator):
    channel_get("meta").send(
        _outbound(kind=MessageKind.TEMPLATE, template_name="hello_world", template_language="en_US")
    )
    assert _sent(meta_emulator)["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


def test_empty_template_parameter_is_refused_before_sending(meta_emulator):
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").send(
            _outbound(kind=MessageKind.TEMPLATE, template_name="t", template_parameters=(TemplateParameter("a", " "),))
        )
    assert caught.value.permanent
    assert meta_emulator.requests == [] and meta_emulator.refused == []


@pytest.mark.parametrize(
    ("kind", "media", "expected"),
    [
        (
            MessageKind.IMAGE,
            Media(url="https://cdn.example.com/map.jpg", caption="Map"),
            {"type": "image", "image": {"link": "https://cdn.example.com/map.jpg", "caption": "Map"}},
        ),
        (
            MessageKind.DOCUMENT,
            Media(url="https://cdn.example.com/menu.pdf", file_name="menu.pdf", caption="Menu"),
            {
                "type": "document",
                "document": {"link": "https://cdn.example.com/menu.pdf", "caption": "Menu", "filename": "menu.pdf"},
            },
        ),
        (
            MessageKind.AUDIO,
            Media(url="https://cdn.example.com/hi.ogg", caption="ignored"),
            {"type": "audio", "audio": {"link": "https://cdn.example.com/hi.ogg"}},
        ),
        (
            MessageKind.VIDEO,
            Media(url="https://cdn.example.com/tour.mp4"),
            {"type": "video", "video": {"link": "https://cdn.example.com/tour.mp4"}},
        ),
    ],
)
def test_media_is_sent_by_link(meta_emulator, kind, media, expected):
    channel_get("meta").send(_outbound(kind=kind, media=media))
    assert _sent(meta_emulator) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "254700000001",
        **expected,
    }


@pytest.mark.parametrize(
    ("code", "status", "permanent", "retry_after"),
    [
        (131047, 400, True, None),  # re-engagement: window closed
        (130429, 400, False, None),  # throughput
        (131056, 400, False, 6.0),  # pair rate limit
        (4, 400, False, None),  # app call limit
        (80007, 400, False, None),  # WABA rate limit
        (132000, 400, True, None),
        (132001, 404, True, None),
        (132005, 400, True, None),
        (132012, 400, True, None),
        (132015, 400, True, None),
        (132016, 400, True, None),
        (131050, 400, True, None),  # user stopped marketing messages
        (131026, 400, True, None),  # undeliverable
        (2, 503, False, None),  # service temporarily unavailable
        (1, 500, False, None),
    ],
)
def test_graph_error_codes_are_mapped(meta_emulator, code, status, permanent, retry_after):
    meta_emulator.fail_with_code(code, status=status, details="details from Meta")
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").send(_outbound(text="Hola"))
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == (str(code), permanent, False)
    assert caught.value.retry_after == retry_after
    assert "details from Meta" in caught.value.message


def test_rate_limit_honours_retry_after_header(meta_emulator):
    meta_emulator.fail_with_code(130429, status=429, headers={"Retry-After": "3"})
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").send(_outbound(text="Hola"))
    assert (caught.value.permanent, caught.value.retry_after) == (False, 3.0)


def test_wrong_token_is_a_permanent_error(meta_emulator, settings):
    settings.META_ACCESS_TOKEN = "wrong"
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").send(_outbound(text="Hola"))
    assert (caught.value.code, caught.value.permanent) == ("190", True)
    assert meta_emulator.refused[0].status == 401


def test_emulator_rejects_named_template_without_parameter_name(meta_emulator):
    """The emulator enforces Meta's rule, so the adapter's named/positional choice is really tested."""
    meta_emulator.named_templates.add("welcome")
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").send(
            _outbound(
                kind=MessageKind.TEMPLATE, template_name="welcome", template_parameters=(TemplateParameter("x", "y"),)
            )
        )
    assert caught.value.code == "100"
    assert "Parameter name is missing" in caught.value.message


def test_timeout_after_the_request_left_is_ambiguous(meta_emulator, settings):
    settings.CHANNEL_HTTP_TIMEOUT_SECONDS = 0.5
    meta_emulator.fail_next(200, delay=2.0, after_processing=True, body={"messages": [{"id": "wamid.LATE"}]})
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").send(_outbound(text="Hola"))
    assert caught.value.ambiguous is True
    assert len(meta_emulator.message_requests()) == 1


def test_unreachable_graph_api_is_transient(meta_emulator, settings):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.META_GRAPH_BASE_URL = f"http://127.0.0.1:{port}/v21.0"
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").send(_outbound(text="Hola"))
    assert (caught.value.permanent, caught.value.ambiguous) == (False, False)


# --- media download -----------------------------------------------------------------------------------


@pytest.fixture
def outsider():
    server = Emulator().start()
    yield server
    server.stop()


def test_media_is_resolved_then_downloaded_with_the_bearer_token(meta_emulator):
    media_id = meta_emulator.add_media(b"OggS-voice-note", "audio/ogg")
    content, mime = channel_get("meta").download_media(Media(provider_id=media_id))
    assert (content, mime) == (b"OggS-voice-note", "audio/ogg")
    lookup, download = meta_emulator.requests
    assert lookup.path == f"/v21.0/{media_id}"
    assert download.path == f"/media-download/{media_id}"
    assert lookup.headers["Authorization"] == download.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_media_over_the_cap_is_refused(meta_emulator, settings):
    settings.MEDIA_MAX_BYTES = 10
    media_id = meta_emulator.add_media(b"x" * 11)
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").download_media(Media(provider_id=media_id))
    assert caught.value.code == "media_too_large"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://evil.example.com/x.jpg",
        "http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",  # not https
        "https://fbcdn.net.evil.example.com/x",
    ],
)
def test_media_url_outside_meta_is_refused(meta_emulator, url):
    media_id = meta_emulator.add_media(b"x", url=url)
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").download_media(Media(provider_id=media_id))
    assert (caught.value.code, caught.value.permanent) == ("media_refused", True)
    assert len(meta_emulator.requests) == 1  # only the lookup


def test_media_url_to_another_local_port_is_refused_without_a_request(meta_emulator, outsider):
    media_id = meta_emulator.add_media(b"x", url=f"http://127.0.0.1:{outsider.port}/admin")
    with pytest.raises(ChannelError):
        channel_get("meta").download_media(Media(provider_id=media_id))
    assert outsider.requests == [] and outsider.refused == []


@pytest.mark.parametrize("media_id", ["../../me", "1/../../x", "", "a b"])
def test_media_id_that_is_not_an_id_is_refused(meta_emulator, media_id):
    with pytest.raises(ChannelError):
        channel_get("meta").download_media(Media(provider_id=media_id))
    assert meta_emulator.requests == [] and meta_emulator.refused == []


# --- configuration check ------------------------------------------------------------------------------


def test_check_config_reads_the_phone_number(meta_emulator):
    assert channel_get("meta").check_config() == "Meta OK: +1 555-078-3881 (Relay Resort)"
    [request] = meta_emulator.requests
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}"
    assert request.query == {"fields": ["display_phone_number,verified_name"]}


def test_check_config_with_a_wrong_token_fails(meta_emulator, settings):
    settings.META_ACCESS_TOKEN = "wrong"
    with pytest.raises(ChannelError) as caught:
        channel_get("meta").check_config()
    assert caught.value.code == "190"


# --- the emulator refuses what Graph refuses (so the send tests above can fail) ----------------------


@pytest.mark.parametrize(
    ("payload", "details"),
    [
        (
            {"messaging_product": "whatsapp", "to": "254700000001", "type": "text", "text": {"body": ""}},
            "text.body is required and cannot be empty",
        ),
        (
            {
                "messaging_product": "whatsapp",
                "to": "254700000001",
                "type": "template",
                "template": {"name": "t", "language": {"code": "es"}, "components": {"type": "body"}},
            },
            "components must be a list",
        ),
        (
            {
                "messaging_product": "whatsapp",
                "to": "254700000001",
                "type": "template",
                "template": {
                    "name": "t",
                    "language": {"code": "es"},
                    "components": [{"type": "body", "parameters": [{"type": "text", "text": ""}]}],
                },
            },
            "Parameter text cannot be empty",
        ),
    ],
)
def test_emulator_refuses_payloads_meta_refuses(meta_emulator, payload, details):
    response = httpx.post(
        f"{meta_emulator.graph_base_url}/{PHONE_NUMBER_ID}/messages",
        json=payload,
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"], error["error_data"]["details"]) == (100, "OAuthException", details)
    assert error["fbtrace_id"]


def test_emulator_refuses_a_wrong_token_with_graph_error_json(meta_emulator):
    response = httpx.get(f"{meta_emulator.graph_base_url}/{PHONE_NUMBER_ID}", headers={"Authorization": "Bearer x"})
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "code", "fbtrace_id"}
    assert response.json()["error"]["code"] == 190
