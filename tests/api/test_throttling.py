from __future__ import annotations

import pytest


@pytest.fixture
def three_per_minute(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_client": "3/min"}}


@pytest.mark.django_db
def test_a_client_over_its_rate_gets_429_with_retry_after_and_the_limit(three_per_minute, analyst_client):
    statuses = [analyst_client.get("/api/v1/whatsapp/templates/").status_code for _ in range(3)]

    response = analyst_client.get("/api/v1/whatsapp/templates/")

    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.json() == {
        "error": {
            "code": "RATE_LIMIT_EXCEEDED",
            "message": f"Rate limit exceeded. Retry in {retry_after} seconds.",
            "details": {"limit": 3, "window": 60, "retry_after": retry_after},
        }
    }


@pytest.mark.django_db
def test_each_token_has_its_own_budget(three_per_minute, analyst_client, integrator_client):
    for _ in range(3):
        analyst_client.get("/api/v1/whatsapp/templates/")

    assert analyst_client.get("/api/v1/whatsapp/templates/").status_code == 429
    assert integrator_client.get("/api/v1/whatsapp/templates/").status_code == 200
