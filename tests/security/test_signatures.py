"""Forged, missing, replayed-with-altered-body and wrong-secret webhooks are refused (403) and never persisted.

Every attack is a real HTTP request through the Django test client to the real webhook URL, built from a
correctly signed request that is then tampered with, so each case differs from an accepted request only by the
tampering. The control case (the untampered request) is accepted, so the refusals cannot pass by accident.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.db import connection

from apps.interactions.models import Contact, InboundDelivery, Message, StatusUpdate, WebhookLog
from tests.emulators import acs_events, meta_events, twilio_requests
from tests.emulators.meta import APP_SECRET
from tests.emulators.twilio import AUTH_TOKEN
from tests.interactions.deliveries import deliveries_store

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def channels(acs_emulator, twilio_emulator, meta_emulator):
    """All three channels enabled, with the secrets the builders sign with."""
    return acs_emulator, twilio_emulator, meta_emulator


def _persisted() -> dict[str, int]:
    """What a request left behind; a message is persisted once stored or waiting as a deferred delivery."""
    return {
        "messages": Message.objects.count() + InboundDelivery.objects.count(),
        "statuses": StatusUpdate.objects.count(),
        "contacts": Contact.objects.count(),
    }


# --- ACS: the Event Grid subscription secret in ?code= -------------------------------------------------
def _acs_body() -> bytes:
    return json.dumps([acs_events.received_event(text="hola")]).encode()


ACS_ATTACKS = {
    "missing code": "/api/v1/whatsapp/webhook/",
    "empty code": "/api/v1/whatsapp/webhook/?code=",
    "wrong code": "/api/v1/whatsapp/webhook/?code=not-the-secret",
    "prefix of the code": f"/api/v1/whatsapp/webhook/?code={acs_events.WEBHOOK_SECRET[:-1]}",
    "code with a suffix": f"/api/v1/whatsapp/webhook/?code={acs_events.WEBHOOK_SECRET}x",
    "code in upper case": f"/api/v1/whatsapp/webhook/?code={acs_events.WEBHOOK_SECRET.upper()}",
    "code with trailing space": f"/api/v1/whatsapp/webhook/?code={acs_events.WEBHOOK_SECRET}%20",
    "code in another parameter": f"/api/v1/whatsapp/webhook/?secret={acs_events.WEBHOOK_SECRET}",
    "another channel's secret": f"/api/v1/whatsapp/webhook/?code={AUTH_TOKEN}",
}


@pytest.mark.parametrize("attack", sorted(ACS_ATTACKS))
def test_acs_webhook_refuses_a_wrong_or_missing_secret(client, channels, attack):
    response = client.post(ACS_ATTACKS[attack], _acs_body(), content_type="application/json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert _persisted() == {"messages": 0, "statuses": 0, "contacts": 0}


def test_acs_webhook_refuses_the_validation_handshake_without_the_secret(client, channels):
    """Else anyone could subscribe Relay's endpoint to their own Event Grid topic."""
    body = json.dumps([acs_events.validation_event("512d38b6-c7b8-40c8-89fe-f46f9e9622b6")])

    response = client.post(
        "/api/v1/whatsapp/webhook/?code=wrong",
        body,
        content_type="application/json",
        HTTP_AEG_EVENT_TYPE="SubscriptionValidation",
    )

    assert response.status_code == 403
    assert b"512d38b6" not in response.content


def test_acs_webhook_accepts_the_same_delivery_with_the_right_secret(client, channels):
    response = client.post(acs_events.webhook_url(), _acs_body(), content_type="application/json")

    assert response.status_code == 200
    assert _persisted()["messages"] == 1


# --- Twilio: X-Twilio-Signature (HMAC-SHA1 of URL + sorted form) --------------------------------------
def _twilio_attack(attack: str, path: str) -> tuple[bytes, dict[str, str]]:
    """(urlencoded body, headers) for one tampering of a correctly signed Twilio request to `path`."""
    if path == twilio_requests.STATUS_PATH:
        form = twilio_requests.twilio_status_form(message_sid="SM" + "a" * 32, status="delivered")
    else:
        form = twilio_requests.twilio_inbound_form(body="hola")
    body, headers = twilio_requests.twilio_signed(path, form)
    signature = headers["HTTP_X_TWILIO_SIGNATURE"]
    if attack == "missing signature":
        headers.pop("HTTP_X_TWILIO_SIGNATURE")
    elif attack == "empty signature":
        headers["HTTP_X_TWILIO_SIGNATURE"] = ""
    elif attack == "forged signature":
        headers["HTTP_X_TWILIO_SIGNATURE"] = "dGhpcyBpcyBub3QgYSBzaWduYXR1cmU="
    elif attack == "wrong auth token":
        headers = twilio_requests.twilio_signed(path, form, auth_token="not-the-auth-token-0000000000")[1]
    elif attack == "replayed with an altered body":
        body = urlencode({**form, "Body": "transfer all the money"})
    elif attack == "replayed with an added parameter":
        body = urlencode({**form, "NumMedia": "1", "MediaUrl0": "http://169.254.169.254/latest/meta-data/"})
    elif attack == "replayed with a removed parameter":
        victim = next(k for k in form if k not in ("MessageSid", "SmsSid", "MessageStatus", "SmsStatus"))
        body = urlencode({k: v for k, v in form.items() if k != victim})
    elif attack == "replayed to another endpoint":
        other = twilio_requests.INBOUND_PATH if path == twilio_requests.STATUS_PATH else twilio_requests.STATUS_PATH
        headers["HTTP_X_TWILIO_SIGNATURE"] = twilio_requests.twilio_signed(other, form)[1]["HTTP_X_TWILIO_SIGNATURE"]
    elif attack == "signature with one character changed":
        flipped = "A" if signature[0] != "A" else "B"
        headers["HTTP_X_TWILIO_SIGNATURE"] = flipped + signature[1:]
    elif attack == "signature for a forwarded host it did not come through":
        headers = twilio_requests.twilio_signed(path, form, public_url="https://attacker.example")[1]
        headers.pop("HTTP_X_FORWARDED_HOST")
        headers.pop("HTTP_X_FORWARDED_PROTO")
    elif attack == "sha1 signature presented as sha256":
        headers["HTTP_X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS"] = "algorithm=HMAC_SHA256"
    elif attack == "unsupported algorithm named":
        headers["HTTP_X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS"] = "algorithm=NONE"
    else:
        raise KeyError(attack)
    return body.encode() if isinstance(body, str) else body, headers


TWILIO_ATTACKS = [
    "missing signature",
    "empty signature",
    "forged signature",
    "wrong auth token",
    "replayed with an altered body",
    "replayed with an added parameter",
    "replayed with a removed parameter",
    "replayed to another endpoint",
    "signature with one character changed",
    "signature for a forwarded host it did not come through",
    "sha1 signature presented as sha256",
    "unsupported algorithm named",
]


@pytest.mark.parametrize("path", [twilio_requests.INBOUND_PATH, twilio_requests.STATUS_PATH])
@pytest.mark.parametrize("attack", TWILIO_ATTACKS)
def test_twilio_webhooks_refuse_a_bad_signature(client, channels, attack, path):
    body, headers = _twilio_attack(attack, path)

    response = client.post(path, body, content_type=twilio_requests.FORM_CONTENT_TYPE, **headers)

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert _persisted() == {"messages": 0, "statuses": 0, "contacts": 0}


@pytest.mark.parametrize("path", [twilio_requests.INBOUND_PATH, twilio_requests.STATUS_PATH])
def test_twilio_webhooks_accept_the_untampered_request(client, channels, path):
    if path == twilio_requests.STATUS_PATH:
        form = twilio_requests.twilio_status_form(message_sid="SM" + "a" * 32, status="delivered")
    else:
        form = twilio_requests.twilio_inbound_form(body="hola")

    response = twilio_requests.twilio_post(client, path, form)

    assert response.status_code == 200
    persisted = _persisted()
    assert persisted["messages"] + persisted["statuses"] == 1


# --- Meta: X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app secret) ---------------------------
def _meta_attack(attack: str) -> tuple[bytes, dict[str, str]]:
    payload = meta_events.meta_delivery(messages=[meta_events.meta_text_message(body="hola")])
    body, headers = meta_events.meta_signed(payload)
    signature = headers["HTTP_X_HUB_SIGNATURE_256"]
    digest = signature.removeprefix("sha256=")
    if attack == "missing signature":
        headers = {}
    elif attack == "empty signature":
        headers["HTTP_X_HUB_SIGNATURE_256"] = ""
    elif attack == "prefix only":
        headers["HTTP_X_HUB_SIGNATURE_256"] = "sha256="
    elif attack == "digest without the sha256= prefix":
        headers["HTTP_X_HUB_SIGNATURE_256"] = digest
    elif attack == "sha1 scheme":
        headers["HTTP_X_HUB_SIGNATURE_256"] = "sha1=" + digest[:40]
    elif attack == "wrong app secret":
        headers = meta_events.meta_signed(body, app_secret="not-the-app-secret")[1]
    elif attack == "replayed with an altered body":
        body = body.replace(b'"hola"', b'"adios"')
    elif attack == "replayed with re-serialised JSON":
        body = json.dumps(json.loads(body), indent=1).encode()
    elif attack == "truncated digest":
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature[:-2]
    elif attack == "digest with one character changed":
        headers["HTTP_X_HUB_SIGNATURE_256"] = "sha256=" + ("0" if digest[0] != "0" else "1") + digest[1:]
    elif attack == "non-hex digest":
        headers["HTTP_X_HUB_SIGNATURE_256"] = "sha256=" + "z" * 64
    elif attack == "signature in the legacy sha1 header only":
        headers = {"HTTP_X_HUB_SIGNATURE": "sha1=" + digest[:40]}
    else:
        raise KeyError(attack)
    return body, headers


META_ATTACKS = [
    "missing signature",
    "empty signature",
    "prefix only",
    "digest without the sha256= prefix",
    "sha1 scheme",
    "wrong app secret",
    "replayed with an altered body",
    "replayed with re-serialised JSON",
    "truncated digest",
    "digest with one character changed",
    "non-hex digest",
    "signature in the legacy sha1 header only",
]


@pytest.mark.parametrize("attack", META_ATTACKS)
def test_meta_webhook_refuses_a_bad_signature(client, channels, attack):
    body, headers = _meta_attack(attack)

    response = client.post(meta_events.WEBHOOK_PATH, body, content_type="application/json", **headers)

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert _persisted() == {"messages": 0, "statuses": 0, "contacts": 0}


def test_meta_webhook_accepts_the_untampered_request(client, channels):
    payload = meta_events.meta_delivery(messages=[meta_events.meta_text_message(body="hola")])

    response = meta_events.meta_post(client, payload)

    assert response.status_code == 200
    assert _persisted()["messages"] == 1


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "wrong"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
        {"hub.mode": "unsubscribe", "hub.challenge": "1158201444", "hub.verify_token": "meta-emulator-verify-token"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": ""},
    ],
)
def test_meta_subscription_check_refuses_a_wrong_verify_token(client, channels, query):
    response = client.get(meta_events.WEBHOOK_PATH, query)

    assert response.status_code == 403
    assert b"1158201444" not in response.content


# --- every attack, counted ---------------------------------------------------------------------------------
def test_every_forged_request_to_every_webhook_is_refused_and_nothing_is_persisted(client, channels):
    """The issue's figure: 100 % refused. One test sends every attack in a row and counts the answers."""
    answers: list[tuple[str, int]] = []
    for attack, url in ACS_ATTACKS.items():
        response = client.post(url, _acs_body(), content_type="application/json")
        answers.append((f"acs: {attack}", response.status_code))
    for path in (twilio_requests.INBOUND_PATH, twilio_requests.STATUS_PATH):
        for attack in TWILIO_ATTACKS:
            body, headers = _twilio_attack(attack, path)
            response = client.post(path, body, content_type=twilio_requests.FORM_CONTENT_TYPE, **headers)
            answers.append((f"twilio {path}: {attack}", response.status_code))
    for attack in META_ATTACKS:
        body, headers = _meta_attack(attack)
        response = client.post(meta_events.WEBHOOK_PATH, body, content_type="application/json", **headers)
        answers.append((f"meta: {attack}", response.status_code))

    refused = [name for name, status in answers if status == 403]
    assert len(answers) == len(ACS_ATTACKS) + 2 * len(TWILIO_ATTACKS) + len(META_ATTACKS) == 45
    assert [a for a in answers if a[1] != 403] == []
    assert len(refused) / len(answers) == 1.0
    assert _persisted() == {"messages": 0, "statuses": 0, "contacts": 0}


@pytest.mark.parametrize("deferred", [True, False], ids=["deferred", "direct"])
def test_refused_and_accepted_requests_leave_no_secret_in_the_webhook_log(client, channels, settings, deferred):
    """The log keeps headers and bodies for debugging; secrets and signatures must not be among them."""
    settings.WEBHOOK_DEFERRED_INGEST = deferred
    client.post(acs_events.webhook_url(), _acs_body(), content_type="application/json")
    twilio_requests.twilio_post(client, twilio_requests.INBOUND_PATH, twilio_requests.twilio_inbound_form())
    meta_events.meta_post(client, meta_events.meta_delivery(messages=[meta_events.meta_text_message()]))
    body, headers = _meta_attack("wrong app secret")
    client.post(meta_events.WEBHOOK_PATH, body, content_type="application/json", **headers)

    form = twilio_requests.twilio_inbound_form()
    twilio_signature = twilio_requests.twilio_signed(twilio_requests.INBOUND_PATH, form)[1]["HTTP_X_TWILIO_SIGNATURE"]
    waiting = "".join(InboundDelivery.objects.values_list("delivery", flat=True))
    # Deferred, the three accepted deliveries wait for the worker, which logs them when it stores them.
    assert deliveries_store() == (3 if deferred else 0)
    logs = list(WebhookLog.objects.values("path", "headers", "body", "error"))
    assert len(logs) >= 4
    dumped = json.dumps(logs) + waiting
    for secret in (acs_events.WEBHOOK_SECRET, AUTH_TOKEN, APP_SECRET):
        assert secret not in dumped
    assert "sha256=" not in waiting and twilio_signature not in waiting
    with connection.cursor() as cursor:
        cursor.execute("SELECT headers::text FROM interactions_webhooklog")
        for (headers_text,) in cursor.fetchall():
            assert "sha256=" not in headers_text
            assert twilio_signature not in headers_text


# --- constant-time comparisons ------------------------------------------------------------------------------
CHANNEL_SOURCES = {
    "acs": ROOT / "apps/channels/acs/channel.py",
    "twilio": ROOT / "apps/channels/twilio/channel.py",
    "meta": ROOT / "apps/channels/meta/channel.py",
}


def _function_source(path: Path, name: str) -> str:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.unparse(node)
    raise AssertionError(f"{path} has no function {name}")


def _equality_comparisons_on_secrets(source: str) -> list[str]:
    """`==` / `!=` / `in` comparisons whose operands mention a secret, signature, token or code."""
    suspicious = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            text = ast.unparse(node).lower()
            if any(word in text for word in ("secret", "signature", "digest", "token", "code", "expected")):
                suspicious.append(ast.unparse(node))
    return suspicious


@pytest.mark.parametrize("channel", ["acs", "meta"])
def test_acs_and_meta_compare_secrets_with_hmac_compare_digest(channel):
    source = _function_source(CHANNEL_SOURCES[channel], "verify")

    assert "hmac.compare_digest(" in source
    assert _equality_comparisons_on_secrets(source) == []


def test_meta_verify_token_is_compared_in_constant_time():
    source = _function_source(CHANNEL_SOURCES["meta"], "handshake")

    assert "hmac.compare_digest(" in source
    assert [c for c in _equality_comparisons_on_secrets(source) if "token" in c.lower()] == []


def test_twilio_signature_goes_through_twilios_constant_time_validator():
    """Twilio asks integrators to use its RequestValidator; its `compare` walks the whole string."""
    import inspect

    from twilio import request_validator

    source = _function_source(CHANNEL_SOURCES["twilio"], "verify")
    assert "RequestValidator(" in source and ".validate(" in source
    assert _equality_comparisons_on_secrets(source) == []
    compare = ast.unparse(ast.parse(inspect.getsource(request_validator.compare)))
    # No early exit inside the loop: every character is compared.
    loop = next(node for node in ast.walk(ast.parse(compare)) if isinstance(node, ast.For))
    assert not any(isinstance(node, (ast.Return, ast.Break)) for node in ast.walk(loop))
    assert "validate(self" in inspect.getsource(request_validator.RequestValidator.validate)
    assert "compare(" in inspect.getsource(request_validator.RequestValidator.validate)
