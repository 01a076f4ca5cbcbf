"""The read-only conversation admin: lists with filters and search, masked phone numbers."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.interactions.models import InboundDelivery

from .factories import (
    ContactFactory,
    InboundMessageFactory,
    InteractionFactory,
    OutboundMessageFactory,
    StatusUpdateFactory,
    WebhookLogFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("model", "query"),
    [
        ("contact", "?q=%2B2547&channel__exact=sandbox"),
        ("message", "?q=Hola&direction__exact=in&status__exact=received"),
        ("interaction", "?route__exact=template&success__exact=1"),
        ("statusupdate", "?status__exact=delivered"),
        ("webhooklog", "?channel__exact=acs&q=webhook"),
    ],
)
def test_every_conversation_list_filters_and_searches(staff_client, model, query):
    contact = ContactFactory(phone="+254712345678", profile_name="<script>alert(1)</script>")
    inbound = InboundMessageFactory(contact=contact)
    InteractionFactory(message=inbound)
    OutboundMessageFactory(contact=contact)
    StatusUpdateFactory()
    WebhookLogFactory()

    response = staff_client.get(f"/admin/interactions/{model}/{query}")

    assert response.status_code == 200
    body = response.content.decode()
    assert "+254712345678" not in body
    assert "<script>alert(1)</script>" not in body


def test_the_contact_list_shows_masked_numbers(staff_client):
    ContactFactory(phone="+254712345678")

    body = staff_client.get("/admin/interactions/contact/").content.decode()

    assert "+254******678" in body


def test_conversation_rows_cannot_be_added_or_changed(staff_client):
    contact = ContactFactory()

    assert staff_client.get("/admin/interactions/contact/add/").status_code == 403
    response = staff_client.post(f"/admin/interactions/contact/{contact.pk}/change/", {"profile_name": "x"})
    assert response.status_code == 403


def test_waiting_deliveries_are_listed_with_masked_senders_and_shown_escaped(staff_client):
    delivery = InboundDelivery.objects.create(
        channel="acs", sender="+254712345678", delivery='{"event": {"text": "<script>alert(1)</script>"}}'
    )

    listing = staff_client.get("/admin/interactions/inbounddelivery/?channel__exact=acs").content.decode()
    detail = staff_client.get(f"/admin/interactions/inbounddelivery/{delivery.pk}/change/")

    assert "+254******678" in listing and "+254712345678" not in listing
    assert detail.status_code == 200
    assert "<script>alert(1)</script>" not in detail.content.decode()
    assert staff_client.get("/admin/interactions/inbounddelivery/add/").status_code == 403
    assert "Inbound deliveries" in staff_client.get("/admin/").content.decode()
