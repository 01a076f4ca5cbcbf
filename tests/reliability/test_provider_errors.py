"""Provider 429 with Retry-After and bursts of 5xx are retried with backoff and delivered once; permanent errors
are recorded on the row and not retried. The real in-process worker against the emulators."""

from __future__ import annotations

import time

import pytest

from apps.interactions.models import Direction, Message, MessageStatus
from tests.emulators import acs_events, meta_events, twilio_requests
from tests.reliability.conftest import EVENT_SID, RECEIVED_SID

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def channels(acs_emulator, twilio_emulator, meta_emulator, demo_templates, settings):
    settings.OUTBOUND_RETRY_BACKOFF_MS = 100
    demo_templates.event_info.twilio_content_sid = EVENT_SID
    demo_templates.event_info.save()
    demo_templates.request_received.twilio_content_sid = RECEIVED_SID
    demo_templates.request_received.save()
    return {"acs": acs_emulator, "twilio": twilio_emulator, "meta": meta_emulator}


def _send_inbound(client, channel: str) -> None:
    text = "¿Cuándo es la conferencia?"
    if channel == "acs":
        response = client.post(
            acs_events.webhook_url(), [acs_events.received_event(text=text)], content_type="application/json"
        )
    elif channel == "twilio":
        response = twilio_requests.twilio_post(
            client, twilio_requests.INBOUND_PATH, twilio_requests.twilio_inbound_form(body=text)
        )
    else:
        response = meta_events.meta_post(
            client, meta_events.meta_delivery(messages=[meta_events.meta_text_message(body=text)])
        )
    assert response.status_code == 200


def _sends(channel: str, emulator) -> tuple[list, list]:
    """(accepted sends, refused sends) in arrival order."""

    def is_send(r):
        if channel == "acs":
            return r.path.endswith("/messages/notifications:send")
        if channel == "twilio":
            return r.path.endswith("/Messages.json")
        return r.path.endswith("/messages")

    return [r for r in emulator.requests if is_send(r)], [r for r in emulator.refused if is_send(r)]


def _script_transient(channel: str, emulator) -> None:
    """One 429 asking for 1 s, then two 5xx."""
    if channel == "acs":
        emulator.fail_next(429, headers={"Retry-After": "1"}, body={"error": {"code": "TooManyRequests"}})
        emulator.fail_next(503, times=2, body={"error": {"code": "ServiceUnavailable"}})
    elif channel == "twilio":
        emulator.fail_with_code(20429, status=429, headers={"Retry-After": "1"})
        emulator.fail_with_code(20500, status=500, times=2)
    else:
        emulator.fail_with_code(130429, status=429, headers={"Retry-After": "1"})
        emulator.fail_with_code(131000, status=500, times=2)


@pytest.mark.parametrize("channel", ["acs", "twilio", "meta"])
def test_429_then_5xx_are_retried_with_backoff_and_delivered_once(client, channels, drain, channel):
    emulator = channels[channel]
    _script_transient(channel, emulator)

    started = time.monotonic()
    _send_inbound(client, channel)
    drain(timeout=60)
    elapsed = time.monotonic() - started

    accepted, refused = _sends(channel, emulator)
    assert [r.status for r in refused] == [429, 503, 503] if channel == "acs" else [429, 500, 500]
    assert len(accepted) == 1
    if channel == "acs":
        assert len(emulator.deliveries) == 1
        # Every retry carried the same repeatability id.
        assert len({r.headers.get("Repeatability-Request-ID") for r in refused + accepted}) == 1
    [reply] = Message.objects.filter(direction=Direction.OUTBOUND)
    assert reply.status == MessageStatus.SENT
    assert reply.attempts == 4
    # Backoff alone (100, 200, 400 ms) would be done in 0.7 s; Retry-After: 1 makes it at least 1 s.
    assert elapsed >= 1.0


def _script_permanent(channel: str, emulator) -> str:
    if channel == "acs":
        emulator.fail_next(400, body={"error": {"code": "BadRequest", "message": "Invalid recipient."}})
        return "BadRequest"
    if channel == "twilio":
        emulator.fail_with_code(21211, status=400, message="Invalid 'To' Phone Number")
        return "21211"
    emulator.fail_with_code(132001, status=400, message="Template name does not exist in the translation")
    return "132001"


@pytest.mark.parametrize("channel", ["acs", "twilio", "meta"])
def test_a_permanent_provider_error_is_recorded_and_not_retried(client, channels, drain, channel):
    emulator = channels[channel]
    code = _script_permanent(channel, emulator)

    _send_inbound(client, channel)
    drain(timeout=60)

    accepted, refused = _sends(channel, emulator)
    assert (len(accepted), len(refused)) == (0, 1)
    [reply] = Message.objects.filter(direction=Direction.OUTBOUND)
    assert reply.status == MessageStatus.FAILED
    assert reply.attempts == 1
    assert code in reply.error_code or code in reply.error_message
    assert reply.failed_at is not None
