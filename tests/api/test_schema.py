"""The OpenAPI schema validates, and schemathesis finds no server error anywhere in it."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token

from .factories import interactions_generate


@pytest.mark.django_db
def test_the_schema_validates_without_warnings():
    out = StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)

    schema = out.getvalue()
    for path in ("/api/v1/whatsapp/statistics/", "/api/v1/whatsapp/send/", "/api/v1/whatsapp/history/"):
        assert path in schema
    assert "tokenAuth" in schema


@pytest.mark.django_db
def test_swagger_ui_is_served_from_local_static_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()


def _exercise(operation, token: str, failures: list, statuses: Counter):
    """A hypothesis test calling `operation` with generated cases; server errors are collected in `failures`."""

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case):
        response = case.call(headers={"Authorization": f"Token {token}"})
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append((operation.label, case.path_parameters, case.query, case.body, response.status_code))

    return run


@pytest.mark.django_db
def test_schemathesis_finds_no_server_error(integrator, settings):
    interactions_generate(start=timezone.now() - timedelta(days=2), hours=40, count=40)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_client": "100000/min"}}
    token = Token.objects.create(user=integrator)
    # As Django's test client does: the test's transaction must survive the end of each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    failures, statuses = [], Counter()
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            _exercise(operation, token.key, failures, statuses)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)

    assert len(operations) >= 7
    assert failures == []
    # Authenticated: most generated calls got past auth (200 / 202 / 400 / 404 / 409), not 401.
    assert statuses[200] > 0 and statuses[401] == 0, statuses
