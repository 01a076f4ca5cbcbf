"""PostgreSQL unreachable: every webhook answers 503 with Retry-After (the provider redelivers), never a 2xx."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from tests.emulators import twilio_requests
from tests.reliability.deliveries import CHANNELS, delivery
from tests.support import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_webhooks_answer_503_with_retry_after_while_the_database_is_unreachable(stack):
    closed = f"postgres://postgres@127.0.0.1:{free_port()}/relay"
    _, base_url = stack.gunicorn(DATABASE_URL=closed)
    status_form = twilio_requests.twilio_status_form(message_sid="SM" + "c" * 32, status="delivered")
    status_signature = twilio_requests.twilio_signature(base_url + twilio_requests.STATUS_PATH, status_form)

    answers = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for channel in CHANNELS:
            d = delivery(channel, 1, base_url=base_url)
            answers[channel] = client.post(d.path, content=d.body, headers=d.headers)
        answers["twilio-status"] = client.post(
            twilio_requests.STATUS_PATH,
            content=urlencode(status_form).encode(),
            headers={"Content-Type": twilio_requests.FORM_CONTENT_TYPE, "X-Twilio-Signature": status_signature},
        )
        health = client.get("/health/")

    for name, response in answers.items():
        assert response.status_code == 503, (name, response.status_code, response.text[:300])
        assert int(response.headers["Retry-After"]) > 0, name
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE", name
    assert health.status_code == 503
    assert health.json()["checks"]["database"]["status"] == "down"
