from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_health_reports_database_cache_and_broker_up(client):
    response = client.get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["database"]["vendor"] == "postgresql"
    assert body["checks"]["cache"]["backend"] == "RedisCache"
    assert body["checks"]["broker"]["backend"] == "RedisBroker"


@pytest.mark.django_db
def test_health_is_also_served_under_the_whatsapp_prefix(client):
    assert client.get("/api/v1/whatsapp/health/").status_code == 200
