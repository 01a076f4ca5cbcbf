"""How the webhook answers when something is wrong: too big, disabled channel, wrong method, database down."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from django.db import connection

from apps.interactions.models import Message, WebhookLog
from tests.emulators.acs_events import WEBHOOK_SECRET, received_event, webhook_url
from tests.interactions.deliveries import deliveries_store
from tests.support import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acs_inbound(settings):
    settings.ACS_ENABLED = True
    settings.ACS_EVENTGRID_SECRET = [WEBHOOK_SECRET]
    return settings


@contextmanager
def database_unreachable():
    """PostgreSQL goes away: the connection is closed and its settings point at a port nobody listens on."""
    original = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original


def test_database_down_answers_503_with_retry_after_so_the_provider_retries(client, acs_inbound):
    body = json.dumps([received_event(text="evento")])

    with database_unreachable():
        response = client.post(webhook_url(), body, content_type="application/json")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert not Message.objects.exists()


def test_a_body_over_the_limit_is_refused_before_reading(client, acs_inbound, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    body = json.dumps([received_event(text="x" * 2000)])

    response = client.post(webhook_url(), body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "PAYLOAD_TOO_LARGE",
            "message": "Request body over 1000 bytes.",
            "details": {"max_bytes": 1000},
        }
    }
    assert not Message.objects.exists()


def test_a_disabled_channel_is_not_found(client, settings):
    settings.ACS_ENABLED = False

    response = client.post(webhook_url(), "[]", content_type="application/json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_a_plain_get_is_not_a_handshake(client, acs_inbound):
    response = client.get(webhook_url())

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_a_malformed_body_is_400_and_logged(client, acs_inbound):
    response = client.post(webhook_url(), "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MALFORMED_PAYLOAD"
    log = WebhookLog.objects.get()
    assert (log.status_code, log.body) == (400, "{not json")
    assert log.error.startswith("malformed:")


def test_webhook_log_headers_are_redacted(client, acs_inbound):
    client.post(
        webhook_url(),
        "[]",
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer secret-token",
        HTTP_X_TWILIO_SIGNATURE="abc",
        HTTP_AEG_EVENT_TYPE="Notification",
    )

    headers = WebhookLog.objects.get().headers
    assert headers["Authorization"] == "[redacted]"
    assert headers["X-Twilio-Signature"] == "[redacted]"
    assert headers["Aeg-Event-Type"] == "Notification"


@pytest.mark.parametrize("deferred", [True, False], ids=["deferred", "direct"])
def test_text_postgresql_cannot_store_is_cleaned_not_a_server_error(client, acs_inbound, settings, deferred):
    settings.WEBHOOK_DEFERRED_INGEST = deferred
    # Valid JSON, but a NUL and a lone surrogate: PostgreSQL refuses both in text and jsonb.
    event = received_event(text="hola\u0000 \ud800 mundo")
    body = json.dumps([event])

    response = client.post(webhook_url(), body, content_type="application/json")
    assert deliveries_store() == int(deferred)  # the worker's step when the webhook deferred it

    assert response.status_code == 200
    message = Message.objects.get()
    assert "\x00" not in message.text and "mundo" in message.text
    assert message.raw_payload["data"]["messageId"] == event["data"]["messageId"]
