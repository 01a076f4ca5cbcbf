from __future__ import annotations

import pytest

READ_ENDPOINTS = [
    ("get", "/api/v1/whatsapp/statistics/"),
    ("get", "/api/v1/whatsapp/history/?phone_number=%2B254712345678"),
    ("get", "/api/v1/whatsapp/interactions/"),
    ("get", "/api/v1/whatsapp/interactions/?format=csv"),
    ("get", "/api/v1/whatsapp/templates/"),
    ("get", "/api/v1/whatsapp/messages/1/"),
]
WRITE_ENDPOINTS = [
    ("post", "/api/v1/whatsapp/send/"),
    ("post", "/api/v1/whatsapp/templates/test/"),
]
NOT_AUTHENTICATED = {
    "error": {"code": "NOT_AUTHENTICATED", "message": "Authentication credentials were not provided.", "details": {}}
}


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), READ_ENDPOINTS + WRITE_ENDPOINTS)
def test_anonymous_callers_get_401_in_the_error_shape(anonymous_client, method, url):
    response = getattr(anonymous_client, method)(url, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), READ_ENDPOINTS + WRITE_ENDPOINTS)
def test_a_bad_token_gets_401(anonymous_client, method, url):
    anonymous_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = getattr(anonymous_client, method)(url, format="json")

    assert response.status_code == 401
    assert response.json() == {"error": {"code": "AUTHENTICATION_FAILED", "message": "Invalid token.", "details": {}}}


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), READ_ENDPOINTS)
def test_users_outside_the_api_groups_get_403_on_reads(outsider_client, method, url):
    response = getattr(outsider_client, method)(url)

    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "PERMISSION_DENIED",
            "message": "Reading the API needs the analysts or integrators group.",
            "details": {},
        }
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), WRITE_ENDPOINTS)
def test_analysts_get_403_on_sending_and_template_tests(analyst_client, method, url):
    response = getattr(analyst_client, method)(url, {}, format="json")

    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": "PERMISSION_DENIED", "message": "Sending needs the integrators group.", "details": {}}
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), READ_ENDPOINTS)
def test_analysts_and_integrators_may_read(analyst_client, integrator_client, method, url):
    for client in (analyst_client, integrator_client):
        response = getattr(client, method)(url)
        # 404 for the unknown phone number and message id: past the permission check.
        assert response.status_code in (200, 404), response.content


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), WRITE_ENDPOINTS)
def test_integrators_pass_the_permission_check_on_writes(integrator_client, method, url):
    response = getattr(integrator_client, method)(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.django_db
def test_staff_may_use_the_api_with_their_browser_session(client, staff):
    client.force_login(staff)

    response = client.get("/api/v1/whatsapp/statistics/")

    assert response.status_code == 200
    assert response.json()["totals"]["interactions"] == 0
