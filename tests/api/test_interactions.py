from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from apps.interactions.api.interactions import CSV_COLUMNS
from apps.interactions.models import Interaction

from .factories import Spec, interaction_create, interactions_generate

URL = "/api/v1/whatsapp/interactions/"


@pytest.fixture
def rows(db):
    return interactions_generate(start=timezone.now() - timedelta(days=2), hours=47, count=45)


@pytest.mark.django_db
def test_interactions_are_listed_newest_first_and_paginate_by_cursor(analyst_client, rows):
    seen, cursor = [], None
    while True:
        body = analyst_client.get(URL, {"limit": 20, **({"cursor": cursor} if cursor else {})}).json()
        seen += [row["id"] for row in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break

    expected = list(Interaction.objects.order_by("-created_at", "-id").values_list("id", flat=True))
    assert seen == expected
    assert len(seen) == 45


@pytest.mark.django_db
def test_interactions_filter_like_the_statistics(analyst_client, rows):
    body = analyst_client.get(URL, {"channel": "twilio", "route": "template", "limit": 1000}).json()

    expected = {r.pk for r in rows if r.channel == "twilio" and r.route == "template"}
    assert {row["id"] for row in body["results"]} == expected
    first = Interaction.objects.select_related("reply", "contact", "message").get(pk=body["results"][0]["id"])
    assert body["results"][0] == {
        "id": first.pk,
        "created_at": first.created_at.isoformat().replace("+00:00", "Z"),
        "channel": "twilio",
        "contact_phone": first.contact.phone,
        "text": first.message.text,
        "intent": first.intent,
        "confidence": None,
        "intent_source": "",
        "route": "template",
        "template_name": first.template_name,
        "success": first.success,
        "error": "",
        "processing_ms": first.processing_ms,
        "reply_id": first.reply_id,
        "reply_status": first.reply.status if first.reply else None,
        "reply_error_code": first.reply.error_code if first.reply else None,
    }


@pytest.mark.django_db
def test_a_bad_cursor_is_a_400(analyst_client):
    response = analyst_client.get(URL, {"cursor": "!!!"})

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "Invalid input.",
            "details": {"fields": {"cursor": ["Not a cursor returned by this endpoint."]}},
        }
    }


@pytest.mark.django_db
def test_csv_export_streams_every_row_with_a_header(analyst_client, rows):
    response = analyst_client.get(URL, {"format": "csv"})

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="interactions.csv"'
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0] == CSV_COLUMNS
    assert [int(line[0]) for line in table[1:]] == list(
        Interaction.objects.order_by("-created_at", "-id").values_list("id", flat=True)
    )


@pytest.mark.django_db
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(analyst_client):
    for text in ('=HYPERLINK("http://evil")', "+1+2", "-2+3", "@SUM(A1)", "plain"):
        interaction_create(Spec(created_at=timezone.now() - timedelta(minutes=1), text=text))

    response = analyst_client.get(URL, {"format": "csv"})

    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    texts = sorted(line[CSV_COLUMNS.index("text")] for line in table[1:])
    assert texts == sorted(['\'=HYPERLINK("http://evil")', "'+1+2", "'-2+3", "'@SUM(A1)", "plain"])


@pytest.mark.django_db
def test_csv_errors_still_use_the_json_error_shape(analyst_client):
    response = analyst_client.get(URL, {"format": "csv", "tz": "Nowhere/Land"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["details"] == {"fields": {"tz": ["Unknown time zone 'Nowhere/Land'."]}}
