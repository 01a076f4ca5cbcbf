"""The Twilio adapter: signature checks, parsing of every inbound shape and status, sends and their errors,
media download (auth, cap, SSRF), and the configuration check — against the Twilio emulator."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import socket
from datetime import UTC, datetime
from urllib.parse import urlencode

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
from tests.emulators.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.emulators.twilio_requests import (
    FORM_CONTENT_TYPE,
    INBOUND_PATH,
    STATUS_PATH,
    twilio_fixture,
    twilio_signature,
    twilio_signed,
)

FIXED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BASIC = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()


@pytest.fixture
def twilio_settings(settings):
    settings.TWILIO_ENABLED = True
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_WHATSAPP_NUMBER = "+14155238886"
    settings.PUBLIC_BASE_URL = ""
    return settings


def _request(path: str, form: dict[str, str], **kwargs):
    body, headers = twilio_signed(path, form, **kwargs)
    return RequestFactory().post(path, data=body, content_type=FORM_CONTENT_TYPE, **headers)


def _parse(form: dict[str, str], path: str = INBOUND_PATH):
    channel = channel_get("twilio")
    request = _request(path, form)
    channel.verify(request)
    return channel.parse(request)


def _fixed(event):
    field = "received_at" if isinstance(event, InboundEvent) else "occurred_at"
    return dataclasses.replace(event, **{field: FIXED})


# --- signatures ---------------------------------------------------------------------------------------


def test_signed_inbound_request_is_accepted(twilio_settings):
    channel_get("twilio").verify(_request(INBOUND_PATH, twilio_fixture("inbound_text")))


def test_request_without_signature_is_refused(twilio_settings):
    request = RequestFactory().post(
        INBOUND_PATH, data=urlencode(twilio_fixture("inbound_text")), content_type=FORM_CONTENT_TYPE
    )
    with pytest.raises(SignatureError, match="missing"):
        channel_get("twilio").verify(request)


def test_request_signed_with_another_token_is_refused(twilio_settings):
    with pytest.raises(SignatureError, match="does not match"):
        channel_get("twilio").verify(_request(INBOUND_PATH, twilio_fixture("inbound_text"), auth_token="forged"))


def test_request_with_altered_body_is_refused(twilio_settings):
    form = twilio_fixture("inbound_text")
    _body, headers = twilio_signed(INBOUND_PATH, form)
    tampered = urlencode({**form, "Body": "Transfer all the money"})
    request = RequestFactory().post(INBOUND_PATH, data=tampered, content_type=FORM_CONTENT_TYPE, **headers)
    with pytest.raises(SignatureError):
        channel_get("twilio").verify(request)


def test_request_signed_for_the_public_url_behind_a_proxy_is_accepted(twilio_settings):
    form = twilio_fixture("inbound_text")
    request = _request(INBOUND_PATH, form, public_url="https://relay.example.com")
    channel_get("twilio").verify(request)


def test_public_url_signature_without_forwarded_headers_is_refused(twilio_settings):
    form = twilio_fixture("inbound_text")
    _body, headers = twilio_signed(INBOUND_PATH, form, public_url="https://relay.example.com")
    headers = {"HTTP_X_TWILIO_SIGNATURE": headers["HTTP_X_TWILIO_SIGNATURE"]}
    request = RequestFactory().post(INBOUND_PATH, data=urlencode(form), content_type=FORM_CONTENT_TYPE, **headers)
    with pytest.raises(SignatureError):
        channel_get("twilio").verify(request)


def test_public_base_url_setting_also_validates_without_forwarded_headers(twilio_settings):
    twilio_settings.PUBLIC_BASE_URL = "https://relay.example.com"
    form = twilio_fixture("inbound_text")
    _body, headers = twilio_signed(INBOUND_PATH, form, public_url="https://relay.example.com")
    headers = {"HTTP_X_TWILIO_SIGNATURE": headers["HTTP_X_TWILIO_SIGNATURE"]}
    request = RequestFactory().post(INBOUND_PATH, data=urlencode(form), content_type=FORM_CONTENT_TYPE, **headers)
    channel_get("twilio").verify(request)


def test_json_bodied_webhook_is_checked_against_its_body_hash(twilio_settings):
    """Twilio signs JSON webhooks over the URL with ?bodySHA256=; the body itself must match that hash."""
    body = json.dumps({"MessageSid": SID, "Body": "hola"}).encode()
    path = f"{INBOUND_PATH}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = twilio_signature(f"http://testserver{path}", {})
    channel = channel_get("twilio")
    channel.verify(
        RequestFactory().post(path, data=body, content_type="application/json", HTTP_X_TWILIO_SIGNATURE=signature)
    )
    forged = RequestFactory().post(
        path, data=body.replace(b"hola", b"adios"), content_type="application/json", HTTP_X_TWILIO_SIGNATURE=signature
    )
    with pytest.raises(SignatureError):
        channel.verify(forged)


def test_missing_auth_token_refuses_every_request(twilio_settings):
    request = _request(INBOUND_PATH, twilio_fixture("inbound_text"))
    twilio_settings.TWILIO_AUTH_TOKEN = ""
    with pytest.raises(SignatureError, match="not configured"):
        channel_get("twilio").verify(request)


def test_skip_signature_setting_is_ignored_when_debug_is_off(twilio_settings):
    twilio_settings.SKIP_WEBHOOK_SIGNATURE_VERIFICATION = True
    twilio_settings.DEBUG = False
    request = RequestFactory().post(
        INBOUND_PATH, data=urlencode(twilio_fixture("inbound_text")), content_type=FORM_CONTENT_TYPE
    )
    with pytest.raises(SignatureError):
        channel_get("twilio").verify(request)


def test_acknowledgement_is_empty_twiml():
    response = channel_get("twilio").acknowledge(RequestFactory().post(INBOUND_PATH))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content == b"<Response></Response>"


# --- inbound parsing ----------------------------------------------------------------------------------

SID = "SM0f6c1a7c3e5b4d2a9e8f7a6b5c4d3e21"
COMMON = {
    "channel": "twilio",
    "provider_message_id": SID,
    "sender_phone": "+254700000001",
    "sender_bsuid": "",
    "received_at": FIXED,
    "profile_name": "Wanjiku",
    "recipient": "+14155238886",
}


def test_text_message_is_parsed(twilio_settings):
    [event] = _parse(twilio_fixture("inbound_text"))
    assert _fixed(event) == InboundEvent(**COMMON, kind=MessageKind.TEXT, text="Hola, ¿tienen habitaciones?")
    assert event.raw["MessageSid"] == SID


@pytest.mark.parametrize(
    ("fixture", "kind", "mime", "text"),
    [
        ("inbound_image", MessageKind.IMAGE, "image/jpeg", "Mi recibo"),
        ("inbound_audio", MessageKind.AUDIO, "audio/ogg", ""),
        ("inbound_document", MessageKind.DOCUMENT, "application/pdf", "factura.pdf"),
    ],
)
def test_media_message_is_parsed_with_its_url(twilio_settings, fixture, kind, mime, text):
    form = twilio_fixture(fixture)
    [event] = _parse(form)
    url = form["MediaUrl0"]
    media = Media(mime_type=mime, provider_id=url.rsplit("/", 1)[-1], url=url, caption=text)
    assert _fixed(event) == InboundEvent(**COMMON, kind=kind, text=text, media=media)


def test_media_kind_follows_content_type_when_message_type_is_absent(twilio_settings):
    form = twilio_fixture("inbound_image")
    del form["MessageType"]
    form["MediaContentType0"] = "video/mp4"
    [event] = _parse(form)
    assert event.kind == MessageKind.VIDEO


def test_quick_reply_button_is_parsed_with_its_payload(twilio_settings):
    [event] = _parse(twilio_fixture("inbound_button"))
    assert _fixed(event) == InboundEvent(
        **COMMON, kind=MessageKind.BUTTON, text="Confirmar", payload="CONFIRM_123", reply_to="SM" + "a" * 32
    )


def test_location_is_parsed(twilio_settings):
    [event] = _parse(twilio_fixture("inbound_location"))
    assert _fixed(event) == InboundEvent(
        **COMMON, kind=MessageKind.LOCATION, text="Nyali Beach, Mombasa", latitude=-4.0435, longitude=39.6682
    )


def test_sender_known_only_by_business_scoped_user_id_is_parsed(twilio_settings):
    [event] = _parse(twilio_fixture("inbound_bsuid"))
    assert event.sender_phone == ""
    assert event.sender_bsuid == "US.13491208655302741918"
    assert event.sender == "US.13491208655302741918"


def test_nul_characters_are_removed_from_text_and_raw(twilio_settings):
    [event] = _parse(twilio_fixture("inbound_text", Body="ho\x00la", ProfileName="Wan\x00jiku"))
    assert (event.text, event.profile_name, event.raw["Body"]) == ("hola", "Wanjiku", "hola")


def test_non_finite_coordinates_are_dropped(twilio_settings):
    [event] = _parse(twilio_fixture("inbound_location", Latitude="nan", Longitude="inf"))
    assert (event.kind, event.latitude, event.longitude) == (MessageKind.LOCATION, None, None)


def test_inbound_without_message_sid_is_malformed(twilio_settings):
    form = twilio_fixture("inbound_text")
    for key in ("MessageSid", "SmsSid", "SmsMessageSid"):
        del form[key]
    with pytest.raises(MalformedPayload):
        _parse(form)


@pytest.mark.parametrize("sid", ["SM" + "a" * 300, "SM-../../x", "12345"])
def test_message_sid_that_is_not_a_twilio_sid_is_malformed(twilio_settings, sid):
    with pytest.raises(MalformedPayload):
        _parse(twilio_fixture("status_delivered", MessageSid=sid, SmsSid=sid), path=STATUS_PATH)


def test_inbound_with_unreadable_sender_is_malformed(twilio_settings):
    with pytest.raises(MalformedPayload):
        _parse(twilio_fixture("inbound_text", From="whatsapp:not-a-number"))


# --- statuses -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "status", "code", "message"),
    [
        ("status_sent", DeliveryStatus.SENT, "", ""),
        ("status_delivered", DeliveryStatus.DELIVERED, "", ""),
        ("status_read", DeliveryStatus.READ, "", ""),
        (
            "status_undelivered",
            DeliveryStatus.FAILED,
            "63016",
            "Failed to send freeform message because you are outside the allowed window. "
            "If you are using WhatsApp, please use a Message Template.",
        ),
        ("status_failed", DeliveryStatus.FAILED, "63024", "Invalid message recipient"),
    ],
)
def test_status_callback_is_parsed(twilio_settings, fixture, status, code, message):
    [event] = _parse(twilio_fixture(fixture), path=STATUS_PATH)
    assert _fixed(event) == StatusEvent(
        channel="twilio",
        provider_message_id="SM" + "c" * 32,
        status=status,
        occurred_at=FIXED,
        error_code=code,
        error_message=message,
        recipient="+254700000001",
    )


@pytest.mark.parametrize("value", ["queued", "sending", "accepted", "scheduled"])
def test_intermediate_statuses_are_ignored(twilio_settings, value):
    form = twilio_fixture("status_sending", MessageStatus=value, SmsStatus=value)
    assert _parse(form, path=STATUS_PATH) == []


# --- send ---------------------------------------------------------------------------------------------


def _outbound(**kwargs) -> OutboundMessage:
    return OutboundMessage(to="+254700000001", idempotency_key="k-1", **kwargs)


def test_text_is_sent_with_body_and_status_callback(twilio_emulator, settings):
    settings.PUBLIC_BASE_URL = "https://relay.example.com"
    result = channel_get("twilio").send(_outbound(text="Hola"))
    [request] = twilio_emulator.message_requests()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["Authorization"] == BASIC
    assert request.form() == {
        "To": ["whatsapp:+254700000001"],
        "From": ["whatsapp:+14155238886"],
        "Body": ["Hola"],
        "StatusCallback": ["https://relay.example.com/api/v1/whatsapp/webhook/twilio/status/"],
    }
    assert result.provider_message_id == twilio_emulator.sent[0].sid
    assert result.provider_message_id.startswith("SM")


def test_no_status_callback_without_public_base_url(twilio_emulator, settings):
    settings.PUBLIC_BASE_URL = ""
    channel_get("twilio").send(_outbound(text="Hola"))
    assert "StatusCallback" not in twilio_emulator.message_requests()[0].form()


def test_template_is_sent_as_content_sid_with_positional_variables(twilio_emulator, settings):
    settings.PUBLIC_BASE_URL = ""
    content_sid = "HX" + "1" * 32
    channel_get("twilio").send(
        _outbound(
            kind=MessageKind.TEMPLATE,
            template_name="booking_confirmation",
            template_language="es",
            template_parameters=(TemplateParameter("name", "Jane"), TemplateParameter("slot", "10:00")),
            template_provider_ref=content_sid,
        )
    )
    form = twilio_emulator.message_requests()[0].form()
    assert form == {
        "To": ["whatsapp:+254700000001"],
        "From": ["whatsapp:+14155238886"],
        "ContentSid": [content_sid],
        "ContentVariables": [json.dumps({"1": "Jane", "2": "10:00"})],
    }


def test_named_template_variables_are_keyed_by_name(twilio_emulator):
    channel_get("twilio").send(
        _outbound(
            kind=MessageKind.TEMPLATE,
            template_name="welcome",
            template_parameters=(TemplateParameter("first_name", "Jane"),),
            template_named_parameters=True,
            template_provider_ref="HX" + "2" * 32,
        )
    )
    form = twilio_emulator.message_requests()[0].form()
    assert json.loads(form["ContentVariables"][0]) == {"first_name": "Jane"}


def test_template_without_content_sid_is_refused_before_sending(twilio_emulator):
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").send(_outbound(kind=MessageKind.TEMPLATE, template_name="welcome"))
    assert caught.value.permanent and caught.value.code == "template_unmapped"
    assert twilio_emulator.requests == [] and twilio_emulator.refused == []


def test_media_is_sent_with_media_url_and_caption(twilio_emulator, settings):
    settings.PUBLIC_BASE_URL = ""
    media = Media(mime_type="image/jpeg", url="https://cdn.example.com/map.jpg", caption="Our map")
    channel_get("twilio").send(_outbound(kind=MessageKind.IMAGE, media=media))
    assert twilio_emulator.message_requests()[0].form() == {
        "To": ["whatsapp:+254700000001"],
        "From": ["whatsapp:+14155238886"],
        "MediaUrl": ["https://cdn.example.com/map.jpg"],
        "Body": ["Our map"],
    }


def test_empty_text_is_refused_before_sending(twilio_emulator):
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").send(_outbound(text="   "))
    assert caught.value.permanent
    assert twilio_emulator.refused == []


@pytest.mark.parametrize(
    ("code", "status", "permanent"),
    [
        (63016, 400, True),  # outside the 24-hour window
        (63013, 400, True),  # channel policy (template variables)
        (63021, 400, True),  # template too long
        (21211, 400, True),  # invalid To number
        (21614, 400, True),  # not a mobile / WhatsApp number
        (63024, 400, True),  # invalid recipient
        (63018, 429, False),  # rate limited
        (20429, 429, False),  # too many requests
        (20500, 500, False),  # Twilio internal error
        (20003, 401, True),  # authentication
    ],
)
def test_twilio_error_codes_are_mapped(twilio_emulator, code, status, permanent):
    twilio_emulator.fail_with_code(code, status=status)
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").send(_outbound(text="Hola"))
    assert caught.value.code == str(code)
    assert caught.value.message == f"Twilio error {code}"
    assert caught.value.permanent is permanent
    assert caught.value.ambiguous is False


def test_rate_limit_carries_retry_after(twilio_emulator):
    twilio_emulator.fail_with_code(63018, status=429, headers={"Retry-After": "7"})
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").send(_outbound(text="Hola"))
    assert (caught.value.permanent, caught.value.retry_after) == (False, 7.0)


def test_wrong_credentials_are_a_permanent_error(twilio_emulator, settings):
    settings.TWILIO_AUTH_TOKEN = "wrong"
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").send(_outbound(text="Hola"))
    assert (caught.value.code, caught.value.permanent) == ("20003", True)
    assert twilio_emulator.refused[0].status == 401


def test_timeout_after_the_request_left_is_ambiguous(twilio_emulator, settings):
    settings.CHANNEL_HTTP_TIMEOUT_SECONDS = 0.5
    twilio_emulator.fail_next(201, delay=2.0, after_processing=True, body={"sid": "SM" + "9" * 32})
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").send(_outbound(text="Hola"))
    assert caught.value.ambiguous is True
    assert len(twilio_emulator.sent) == 1  # the message did reach Twilio


def test_unreadable_answer_after_sending_is_ambiguous(twilio_emulator):
    twilio_emulator.fail_next(
        201, after_processing=True, body=b"<html>proxy error</html>", headers={"Content-Type": "text/html"}
    )
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").send(_outbound(text="Hola"))
    assert (caught.value.code, caught.value.ambiguous) == ("bad_response", True)
    assert len(twilio_emulator.sent) == 1


def test_unreachable_api_is_transient_not_ambiguous(twilio_emulator, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").send(_outbound(text="Hola"))
    assert (caught.value.permanent, caught.value.ambiguous) == (False, False)


# --- media download -----------------------------------------------------------------------------------


@pytest.fixture
def outsider():
    """Another local server standing in for an internal service an attacker would like us to call."""
    server = Emulator().start()
    yield server
    server.stop()


def test_media_is_downloaded_with_basic_auth(twilio_emulator):
    url = twilio_emulator.add_media(b"\xff\xd8jpeg-bytes", "image/jpeg")
    content, mime = channel_get("twilio").download_media(Media(url=url, mime_type="image/jpeg"))
    assert (content, mime) == (b"\xff\xd8jpeg-bytes", "image/jpeg")
    assert twilio_emulator.requests[-1].headers["Authorization"] == BASIC


def test_media_over_the_size_cap_is_refused(twilio_emulator, settings):
    settings.MEDIA_MAX_BYTES = 1000
    url = twilio_emulator.add_media(b"x" * 1001, "image/jpeg")
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").download_media(Media(url=url))
    assert (caught.value.code, caught.value.permanent) == ("media_too_large", True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/latest/meta-data/",
        "https://evil.example.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        "https://api.twilio.com.evil.example.com/x",
        "file:///etc/passwd",
    ],
)
def test_media_url_outside_twilio_is_refused(twilio_emulator, url):
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").download_media(Media(url=url))
    assert (caught.value.code, caught.value.permanent) == ("media_refused", True)


def test_media_url_to_another_local_port_is_refused_without_a_request(twilio_emulator, outsider):
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").download_media(Media(url=f"http://127.0.0.1:{outsider.port}/secrets"))
    assert caught.value.code == "media_refused"
    assert outsider.requests == [] and outsider.refused == []


def test_redirect_to_a_disallowed_host_is_not_followed(twilio_emulator, outsider):
    url = f"{twilio_emulator.base_url}/redirect?" + urlencode({"to": f"http://127.0.0.1:{outsider.port}/x"})
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").download_media(Media(url=url))
    assert caught.value.code == "media_refused"
    assert outsider.requests == [] and outsider.refused == []


def test_redirect_within_allowed_hosts_is_followed(twilio_emulator):
    target = twilio_emulator.add_media(b"pdf-bytes", "application/pdf")
    url = f"{twilio_emulator.base_url}/redirect?" + urlencode({"to": target})
    assert channel_get("twilio").download_media(Media(url=url)) == (b"pdf-bytes", "application/pdf")


def test_missing_media_is_a_permanent_error(twilio_emulator):
    url = twilio_emulator.add_media(b"x")
    twilio_emulator.reset()
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").download_media(Media(url=url))
    assert (caught.value.code, caught.value.permanent) == ("media_http_404", True)


# --- configuration check ------------------------------------------------------------------------------


def test_check_config_fetches_the_account(twilio_emulator):
    assert channel_get("twilio").check_config() == "Twilio OK: account Relay test account"
    assert twilio_emulator.requests[-1].path == f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"


def test_check_config_with_a_wrong_token_fails(twilio_emulator, settings):
    settings.TWILIO_AUTH_TOKEN = "wrong"
    with pytest.raises(ChannelError) as caught:
        channel_get("twilio").check_config()
    assert caught.value.code == "20003"


# --- the emulator refuses what Twilio refuses --------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": "whatsapp:+254700000001", "From": "whatsapp:+14155238886"}, 21619),
        ({"To": "whatsapp:+254700000001", "From": "whatsapp:+14155238886", "ContentVariables": "{}"}, 21654),
        ({"To": "+254700000001", "From": "whatsapp:+14155238886", "Body": "x"}, 21910),
        ({"From": "whatsapp:+14155238886", "Body": "x"}, 21604),
    ],
)
def test_emulator_refuses_messages_twilio_refuses(twilio_emulator, form, code):
    response = httpx.post(
        f"{twilio_emulator.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data=form,
        auth=(ACCOUNT_SID, AUTH_TOKEN),
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": code,
        "message": response.json()["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }


def test_emulator_refuses_wrong_basic_auth_with_twilio_error_json(twilio_emulator):
    response = httpx.get(f"{twilio_emulator.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}.json", auth=(ACCOUNT_SID, "x"))
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
