from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.interactions.models import Direction, Message, MessageStatus

from .factories import ContactFactory, MessageFactory, at, interactions_generate


@pytest.mark.django_db
def test_the_dashboard_renders_for_staff_with_charts_and_the_backlog(client, staff):
    rows = interactions_generate(start=timezone.now() - timedelta(days=5), hours=5 * 24, count=60)
    queued_replies = [row for row in rows if row.reply and row.reply.status == MessageStatus.QUEUED]
    contact = ContactFactory()
    at(MessageFactory(contact=contact, status=MessageStatus.RECEIVED), timezone.now() - timedelta(minutes=10))
    at(MessageFactory(contact=contact, direction=Direction.OUTBOUND, status=MessageStatus.QUEUED), timezone.now())
    client.force_login(staff)

    index = client.get("/admin/")
    response = client.get("/admin/dashboard/")

    assert index.status_code == 200
    assert 'href="/admin/dashboard/"' in index.content.decode()
    assert response.status_code == 200
    html = response.content.decode()
    assert "Interactions per day by route" in html
    assert html.count("<rect ") >= 5
    assert "/static/interactions/dashboard.css" in html
    assert "cdn" not in html.lower()
    dash = response.context["dash"]
    assert dash["totals"]["interactions"] == 60
    assert dash["backlog"]["inbound_received"] == 1
    assert dash["backlog"]["outbound_queued"] == 1 + len(queued_replies)
    replies = Message.objects.filter(pk__in=[row.reply_id for row in queued_replies])
    oldest = min([timezone.now() - timedelta(minutes=10), *replies.values_list("created_at", flat=True)])
    assert abs(dash["backlog"]["oldest_age_seconds"] - (timezone.now() - oldest).total_seconds()) < 30
    assert {row["key"] for row in dash["intents"]} <= {"booking", "hours", "prices", "greeting", "(none)"}
    assert dash["backlog"]["oldest_age"] in html
    assert sum(e["count"] for e in dash["errors"]) == dash["totals"]["delivery"]["failed"]


@pytest.mark.django_db
def test_the_dashboard_sends_anonymous_visitors_to_the_admin_login(client):
    response = client.get("/admin/dashboard/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_the_dashboard_is_closed_to_non_staff_users(client, analyst):
    client.force_login(analyst)

    assert client.get("/admin/dashboard/").status_code == 302
