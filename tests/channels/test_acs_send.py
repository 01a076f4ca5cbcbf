"""ACS channel, outbound side, against the ACS emulator with the real SDK: exact bodies, HMAC, repeatability,
error mapping, media download and the configuration check."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from apps.channels.base import ChannelError, Media, MessageKind, OutboundMessage, TemplateParameter
from apps.channels.registry import channel_get
from tests.emulators.acs import template_item
from tests.emulators.acs_events import CHANNEL_ID

TO = "+254700000001"


def outbound(**kw) -> OutboundMessage:
    kw.setdefault("to", TO)
    kw.setdefault("idempotency_key", str(uuid.uuid4()))
    kw.setdefault("first_queued_at", datetime.now(UTC).replace(microsecond=0))
    return OutboundMessage(**kw)


def send(message: OutboundMessage):
    return channel_get("acs").send(message)


# --- bodies ---------------------------------------------------------------------------------------
def test_text_is_sent_with_the_exact_body_and_a_valid_hmac(acs_emulator):
    result = send(outbound(text="Hola, bienvenido"))
    [delivery] = acs_emulator.deliveries
    assert delivery.body == {
        "kind": "text",
        "channelRegistrationId": CHANNEL_ID,
        "to": [TO],
        "content": "Hola, bienvenido",
    }
    assert result.provider_message_id == delivery.message_id
    [request] = acs_emulator.requests
    assert request.method == "POST"
    assert request.path == "/messages/notifications:send"
    assert request.query == {"api-version": ["2024-08-30"]}
    assert request.headers["Authorization"].startswith("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&")
    assert acs_emulator.refused == []


def test_template_is_sent_with_values_and_body_bindings_in_order(acs_emulator):
    send(
        outbound(
            kind=MessageKind.TEMPLATE,
            template_name="vea_event_info",
            template_language="es",
            template_parameters=(
                TemplateParameter("event_name", "Conferencia de jóvenes"),
                TemplateParameter("event_date", "12 de diciembre"),
                TemplateParameter("event_location", "Auditorio central"),
            ),
        )
    )
    assert acs_emulator.deliveries[0].body == {
        "kind": "template",
        "channelRegistrationId": CHANNEL_ID,
        "to": [TO],
        "template": {
            "name": "vea_event_info",
            "language": "es",
            "values": [
                {"kind": "text", "name": "event_name", "text": "Conferencia de jóvenes"},
                {"kind": "text", "name": "event_date", "text": "12 de diciembre"},
                {"kind": "text", "name": "event_location", "text": "Auditorio central"},
            ],
            "bindings": {
                "kind": "whatsApp",
                "body": [{"refValue": "event_name"}, {"refValue": "event_date"}, {"refValue": "event_location"}],
            },
        },
    }


def test_template_without_parameters_sends_no_values_or_bindings(acs_emulator):
    send(outbound(kind=MessageKind.TEMPLATE, template_name="vea_request_received", template_language="es"))
    assert acs_emulator.deliveries[0].body["template"] == {"name": "vea_request_received", "language": "es"}


def test_image_is_sent_with_its_caption(acs_emulator):
    send(outbound(kind=MessageKind.IMAGE, media=Media(url="https://cdn.example/a.png", caption="Mapa")))
    assert acs_emulator.deliveries[0].body == {
        "kind": "image",
        "channelRegistrationId": CHANNEL_ID,
        "to": [TO],
        "mediaUri": "https://cdn.example/a.png",
        "caption": "Mapa",
    }


def test_document_is_sent_with_caption_and_file_name(acs_emulator):
    media = Media(url="https://cdn.example/r.pdf", caption="Recibo", file_name="recibo.pdf")
    send(outbound(kind=MessageKind.DOCUMENT, media=media))
    assert acs_emulator.deliveries[0].body == {
        "kind": "document",
        "channelRegistrationId": CHANNEL_ID,
        "to": [TO],
        "mediaUri": "https://cdn.example/r.pdf",
        "caption": "Recibo",
        "fileName": "recibo.pdf",
    }


def test_audio_and_video_are_sent(acs_emulator):
    send(outbound(kind=MessageKind.AUDIO, media=Media(url="https://cdn.example/a.ogg")))
    send(outbound(kind=MessageKind.VIDEO, media=Media(url="https://cdn.example/v.mp4", caption="Video")))
    assert [d.body for d in acs_emulator.deliveries] == [
        {"kind": "audio", "channelRegistrationId": CHANNEL_ID, "to": [TO], "mediaUri": "https://cdn.example/a.ogg"},
        {
            "kind": "video",
            "channelRegistrationId": CHANNEL_ID,
            "to": [TO],
            "mediaUri": "https://cdn.example/v.mp4",
            "caption": "Video",
        },
    ]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"text": ""}, "empty_text"),
        ({"kind": MessageKind.IMAGE}, "media_url_required"),
        ({"kind": MessageKind.TEMPLATE, "template_name": "x"}, "template_incomplete"),
        ({"kind": MessageKind.REACTION, "text": "👍"}, "unsupported_kind"),
        ({"text": "hola", "idempotency_key": ""}, "missing_idempotency_key"),
    ],
)
def test_messages_acs_cannot_send_are_refused_before_any_call(acs_emulator, message, code):
    with pytest.raises(ChannelError) as caught:
        send(outbound(**message))
    assert (caught.value.code, caught.value.permanent) == (code, True)
    assert acs_emulator.requests == [] and acs_emulator.refused == []


# --- repeatability --------------------------------------------------------------------------------
def test_the_idempotency_key_is_the_repeatability_id_and_first_sent_is_first_queued_at(acs_emulator):
    key = str(uuid.uuid4())
    first_queued_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    send(outbound(text="hola", idempotency_key=key, first_queued_at=first_queued_at))
    [delivery] = acs_emulator.deliveries
    assert delivery.repeatability_request_id == key
    assert delivery.repeatability_first_sent == format_datetime(first_queued_at, usegmt=True)


def test_a_retried_send_carries_the_same_id_and_is_delivered_once(acs_emulator):
    message = outbound(text="hola")
    first = send(message)
    second = send(message)
    assert first == second
    assert len(acs_emulator.deliveries) == 1
    ids = {r.headers["Repeatability-Request-ID"] for r in acs_emulator.requests}
    assert ids == {message.idempotency_key}
    assert len(acs_emulator.requests) == 2


def test_a_send_retried_after_a_429_is_delivered_once_with_the_same_id(acs_emulator):
    acs_emulator.fail_next(
        429, headers={"Retry-After": "1"}, body={"error": {"code": "TooManyRequests", "message": "slow"}}
    )
    message = outbound(text="hola")
    with pytest.raises(ChannelError):
        send(message)
    result = send(message)
    [delivery] = acs_emulator.deliveries
    assert result.provider_message_id == delivery.message_id
    assert [r.headers["Repeatability-Request-ID"] for r in acs_emulator.refused + acs_emulator.requests] == [
        message.idempotency_key
    ] * 2


def test_a_non_guid_idempotency_key_becomes_a_stable_guid(acs_emulator):
    send(outbound(text="hola", idempotency_key="reply:42"))
    send(outbound(text="hola", idempotency_key="reply:42"))
    ids = {r.headers["Repeatability-Request-ID"] for r in acs_emulator.requests}
    assert len(ids) == 1
    assert uuid.UUID(ids.pop()).version == 5
    assert len(acs_emulator.deliveries) == 1


def test_a_send_that_timed_out_after_acs_accepted_it_is_not_delivered_twice(acs_emulator, settings):
    settings.CHANNEL_HTTP_TIMEOUT_SECONDS = 0.3
    acs_emulator.fail_next(202, delay=1.0, after_processing=True)
    message = outbound(text="hola")
    with pytest.raises(ChannelError) as caught:
        send(message)
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == ("timeout", False, True)
    settings.CHANNEL_HTTP_TIMEOUT_SECONDS = 5
    result = send(message)
    [delivery] = acs_emulator.deliveries
    assert result.provider_message_id == delivery.message_id


def test_a_retry_after_acs_stopped_tracking_the_id_is_refused_as_ambiguous(acs_emulator):
    message = outbound(text="hola", first_queued_at=datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(ChannelError) as caught:
        send(message)
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == ("repeatability_expired", True, True)
    assert acs_emulator.deliveries == []


# --- error mapping --------------------------------------------------------------------------------
def test_429_is_transient_with_retry_after_in_seconds(acs_emulator):
    acs_emulator.fail_next(
        429, headers={"Retry-After": "7"}, body={"error": {"code": "TooManyRequests", "message": "Rate limit"}}
    )
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    error = caught.value
    assert (error.permanent, error.retry_after, error.code, error.message) == (
        False,
        7.0,
        "TooManyRequests",
        "Rate limit",
    )


def test_429_with_an_http_date_retry_after(acs_emulator):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    acs_emulator.fail_next(429, headers={"Retry-After": when})
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert 25 <= caught.value.retry_after <= 30
    assert caught.value.code == "rate_limited"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(acs_emulator, status):
    acs_emulator.fail_next(status, body={"error": {"code": "InternalError", "message": "boom"}})
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert (caught.value.permanent, caught.value.code) == (False, "InternalError")
    assert len(acs_emulator.refused) == 1  # no SDK retries


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_permanent_with_the_acs_code_and_message(acs_emulator, status):
    acs_emulator.fail_next(status, body={"error": {"code": "InvalidRecipient", "message": "Recipient is not valid"}})
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    error = caught.value
    assert (error.permanent, error.code, error.message) == (True, "InvalidRecipient", "Recipient is not valid")


def test_a_wrong_access_key_is_a_permanent_401(acs_emulator, settings):
    settings.ACS_CONNECTION_STRING = f"endpoint={acs_emulator.base_url}/;accesskey=d3Jvbmcta2V5"
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert (caught.value.permanent, caught.value.code) == (True, "Denied")
    assert len(acs_emulator.refused) == 1 and acs_emulator.deliveries == []


def test_a_whatsapp_window_closed_code_is_passed_through_as_permanent(acs_emulator):
    body = {"error": {"code": "131047", "message": "Re-engagement message"}}
    acs_emulator.fail_next(400, body=body)
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert (caught.value.code, caught.value.permanent) == ("131047", True)


def test_a_whatsapp_pair_rate_limit_in_the_inner_error_is_transient(acs_emulator):
    body = {"error": {"code": "BadRequest", "message": "Pair rate limit", "innererror": {"code": "131056"}}}
    acs_emulator.fail_next(400, body=body)
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert (caught.value.code, caught.value.permanent) == ("131056", False)


def test_an_unreachable_endpoint_is_transient_and_not_ambiguous(acs_emulator, settings):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.ACS_CONNECTION_STRING = f"endpoint=http://127.0.0.1:{port}/;accesskey={acs_emulator.access_key}"
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == ("connection_error", False, False)


@pytest.fixture
def fresh_acs_clients():
    """ACS clients built again (they read the proxy environment once, when built), before and after the test."""
    from apps.channels.acs import outbound as acs_outbound

    acs_outbound._clients.clear()
    yield acs_outbound._clients.clear
    acs_outbound._clients.clear()


def test_the_proxy_from_the_environment_is_used_and_no_proxy_honoured(acs_emulator, monkeypatch, fresh_acs_clients):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")  # a proxy nobody listens on

    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert (caught.value.code, caught.value.permanent) == ("connection_error", False)
    assert acs_emulator.deliveries == []

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fresh_acs_clients()
    send(outbound(text="hola"))
    assert len(acs_emulator.deliveries) == 1


@pytest.mark.parametrize("connection_string", ["", "endpoint=http://127.0.0.1:1/", "accesskey=abc", "garbage"])
def test_a_missing_or_incomplete_configuration_is_permanent(settings, connection_string):
    settings.ACS_CONNECTION_STRING = connection_string
    settings.ACS_ENDPOINT = ""
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert (caught.value.code, caught.value.permanent) == ("not_configured", True)


def test_settings_are_read_on_every_call(acs_emulator, settings):
    send(outbound(text="uno"))
    settings.ACS_CHANNEL_REGISTRATION_ID = "99999999-0000-4000-8000-000000000000"
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="dos"))
    assert caught.value.message == "Invalid channelRegistrationId."
    assert len(acs_emulator.deliveries) == 1


# --- media ----------------------------------------------------------------------------------------
def test_download_media_returns_the_bytes_and_mime_type(acs_emulator):
    acs_emulator.add_media("media-1", b"\x89PNG" + b"x" * 1000, "image/png")
    content, mime = channel_get("acs").download_media(Media(provider_id="media-1", mime_type="image/jpeg"))
    assert (content, mime) == (b"\x89PNG" + b"x" * 1000, "image/png")
    [request] = acs_emulator.requests
    assert (request.method, request.path) == ("GET", "/messages/streams/media-1")


def test_download_media_stops_past_the_size_cap(acs_emulator, settings):
    settings.MEDIA_MAX_BYTES = 1024
    acs_emulator.add_media("big", b"x" * 1025, "application/pdf")
    with pytest.raises(ChannelError) as caught:
        channel_get("acs").download_media(Media(provider_id="big"))
    assert (caught.value.code, caught.value.permanent) == ("media_too_large", True)


def test_download_media_without_content_length_stops_reading_past_the_cap(acs_emulator, settings):
    settings.MEDIA_MAX_BYTES = 256 * 1024
    content = b"z" * (64 * 1024 * 1024)
    acs_emulator.add_media("endless", content, "video/mp4", chunked=True)
    with pytest.raises(ChannelError) as caught:
        channel_get("acs").download_media(Media(provider_id="endless"))
    assert (caught.value.code, caught.value.permanent) == ("media_too_large", True)
    assert acs_emulator.media_served["endless"].wait(10)
    # The connection was dropped long before the 64 MiB were sent (socket buffers hold a few MiB at most).
    assert acs_emulator.media_bytes_written["endless"] < len(content) // 4


def test_chunked_media_under_the_cap_is_read_whole(acs_emulator):
    acs_emulator.add_media("small", b"a" * 200_000, "audio/ogg", chunked=True)
    content, mime = channel_get("acs").download_media(Media(provider_id="small"))
    assert (len(content), mime) == (200_000, "audio/ogg")


def test_download_media_at_exactly_the_cap_is_accepted(acs_emulator, settings):
    settings.MEDIA_MAX_BYTES = 1024
    acs_emulator.add_media("edge", b"y" * 1024, "application/pdf")
    content, mime = channel_get("acs").download_media(Media(provider_id="edge"))
    assert (len(content), mime) == (1024, "application/pdf")


def test_download_of_unknown_media_is_permanent(acs_emulator):
    with pytest.raises(ChannelError) as caught:
        channel_get("acs").download_media(Media(provider_id="nope"))
    assert (caught.value.code, caught.value.permanent) == ("NotFound", True)


def test_html_error_pages_from_a_gateway_are_transient(acs_emulator):
    acs_emulator.fail_next(502, body="<html>Bad Gateway</html>")
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert (caught.value.permanent, caught.value.code) == (False, "http_502")


def test_managed_identity_over_plain_http_is_a_configuration_error(settings):
    settings.ACS_CONNECTION_STRING = ""
    settings.ACS_ENDPOINT = "http://127.0.0.1:1"
    with pytest.raises(ChannelError) as caught:
        send(outbound(text="hola"))
    assert (caught.value.code, caught.value.permanent) == ("not_configured", True)


# --- configuration check --------------------------------------------------------------------------
def test_check_config_lists_the_first_page_of_templates(acs_emulator):
    acs_emulator.set_templates([template_item(f"t{i}") for i in range(4)])
    assert channel_get("acs").check_config() == f"ACS OK: 4 templates on channel {CHANNEL_ID}"
    [request] = acs_emulator.requests
    assert request.path == f"/messages/channels/{CHANNEL_ID}/templates"


def test_check_config_says_when_there_are_more_pages(acs_emulator):
    acs_emulator.set_templates([template_item(f"t{i}") for i in range(5)], page_size=2)
    assert channel_get("acs").check_config() == f"ACS OK: 2+ templates on channel {CHANNEL_ID}"
    assert len(acs_emulator.requests) == 1


def test_check_config_fails_on_a_wrong_key(acs_emulator, settings):
    settings.ACS_CONNECTION_STRING = f"endpoint={acs_emulator.base_url};accesskey=d3Jvbmcta2V5"
    with pytest.raises(ChannelError) as caught:
        channel_get("acs").check_config()
    assert (caught.value.code, caught.value.permanent) == ("Denied", True)
