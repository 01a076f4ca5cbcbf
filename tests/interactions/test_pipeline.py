"""Decisions of the inbound pipeline: rate limit, allow-list, flows, media, errors that must not block."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.cache import cache

from apps.interactions.flows import FlowResult, flow_register, flow_unregister, flows_registered
from apps.interactions.middleware import HEARTBEAT_KEY
from apps.interactions.models import Direction, Interaction, Message
from apps.interactions.services import outbound_text_create
from tests.emulators.acs_events import document_event, image_event, received_event, webhook_url

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/sandbox/api/messages/"


def say(client, text, phone="+254700000001"):
    response = client.post(URL, {"phone": phone, "text": text}, content_type="application/json")
    assert response.status_code == 201
    return response.json()["message"]["id"]


def routes():
    return list(Interaction.objects.order_by("message__received_at", "message_id").values_list("route", flat=True))


def test_over_the_rate_limit_one_notice_then_silence(client, sandbox, demo_templates, drain, settings):
    settings.RATE_LIMIT_MAX_REQUESTS = 2
    settings.RATE_LIMIT_WINDOW_SECONDS = 3600

    for _ in range(5):
        say(client, "evento")
        drain()

    assert routes() == ["template", "template", "rate_limited", "rate_limited", "rate_limited"]
    replies = list(Message.objects.filter(direction=Direction.OUTBOUND).order_by("id").values_list("kind", "text"))
    assert [kind for kind, _ in replies] == ["template", "template", "text"]
    assert replies[2][1] == "Estás enviando mensajes muy rápido. Espera un minuto antes de volver a escribir."
    notice = Interaction.objects.filter(route="rate_limited").order_by("id").first()
    assert notice.context == {"count": 3, "limit": 2, "retry_after": notice.context["retry_after"], "notice": True}


def test_numbers_outside_the_allow_list_are_blocked(client, sandbox, demo_templates, drain, settings):
    settings.ALLOWED_PHONE_NUMBERS = ["254700000001"]  # written without "+": still E.164 inside

    say(client, "evento", phone="+254700000001")
    say(client, "evento", phone="+254700000002")
    drain()

    assert sorted(routes()) == ["blocked", "template"]
    blocked = Interaction.objects.get(route="blocked")
    assert blocked.contact.phone == "+254700000002"
    assert blocked.reply is None
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1


class EchoBookingFlow:
    """A flow as a bookings app would register it: claims "reservar", answers with one text."""

    name = "test_booking"

    def claims(self, *, message, contact) -> bool:
        return "reservar" in (message.text or "").lower()

    def handle(self, *, message, contact) -> FlowResult:
        if "explota" in message.text:
            raise RuntimeError("the flow broke")
        reply = outbound_text_create(contact=contact, text="¿Qué actividad quieres reservar?", in_reply_to=message)
        return FlowResult(replies=[reply], context={"step": "pick_activity"})


@pytest.fixture
def booking_flow():
    flow = flow_register(EchoBookingFlow())
    yield flow
    flow_unregister(flow.name)


def test_a_registered_flow_handles_the_messages_it_claims(client, sandbox, demo_templates, drain, booking_flow):
    assert booking_flow in flows_registered()

    say(client, "Quiero reservar kayak")
    drain()

    interaction = Interaction.objects.get()
    assert interaction.route == "flow"
    assert interaction.context == {"flow": "test_booking", "step": "pick_activity", "replies": [interaction.reply_id]}
    assert interaction.reply.text == "¿Qué actividad quieres reservar?"
    assert interaction.reply.status == "read"


def test_an_error_in_one_message_is_recorded_and_does_not_block_the_next(
    client, sandbox, demo_templates, drain, booking_flow
):
    broken = say(client, "reservar explota")
    fine = say(client, "evento")
    drain()

    failed = Interaction.objects.get(message_id=broken)
    assert (failed.success, failed.error) == (False, "RuntimeError: the flow broke")
    assert failed.reply is None
    assert Message.objects.get(pk=broken).status == "processed"
    answered = Interaction.objects.get(message_id=fine)
    assert (answered.route, answered.success, answered.reply.template_name) == ("template", True, "vea_event_info")


def test_reactions_are_logged_and_not_answered(client, acs_emulator, demo_templates, drain):
    reaction = received_event(message_type="reaction", text=None, reaction={"messageId": "m-1", "emoji": "👍"})

    client.post(webhook_url(), json.dumps([reaction]), content_type="application/json")
    drain()

    assert routes() == ["ignored"]
    assert acs_emulator.deliveries == []


def test_inbound_media_is_downloaded_by_the_worker_and_recorded(
    client, acs_emulator, demo_templates, drain, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    settings.AI_FALLBACK_APP = ""
    acs_emulator.add_media("media-1", b"%PDF-1.4 menu", "application/pdf")

    client.post(
        webhook_url(),
        json.dumps([document_event(media_id="media-1", file_name="../../menú del día.pdf")]),
        content_type="application/json",
    )
    drain()

    inbound = Message.objects.get(direction=Direction.INBOUND)
    stored = inbound.media["stored_path"]
    assert stored == f"inbound/{inbound.pk}-men_del_d_a.pdf"
    assert inbound.media["size"] == len(b"%PDF-1.4 menu")
    assert (Path(tmp_path) / stored).read_bytes() == b"%PDF-1.4 menu"
    interaction = Interaction.objects.get()
    assert (interaction.route, interaction.template_name) == ("unmatched", "vea_request_received")


def test_a_media_download_failure_is_recorded_and_the_message_still_answered(
    client, acs_emulator, demo_templates, drain, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    settings.AI_FALLBACK_APP = ""

    client.post(webhook_url(), json.dumps([image_event(media_id="missing")]), content_type="application/json")
    drain()

    inbound = Message.objects.get(direction=Direction.INBOUND)
    assert inbound.media["error"]
    assert "stored_path" not in inbound.media
    assert Interaction.objects.get().reply.template_name == "vea_request_received"


def test_a_running_worker_writes_its_heartbeat(worker):
    import time

    deadline = time.monotonic() + 5
    while cache.get(HEARTBEAT_KEY) is None and time.monotonic() < deadline:
        time.sleep(0.05)

    assert cache.get(HEARTBEAT_KEY)


def test_messages_waiting_together_are_decided_in_order_each_with_the_contact_as_the_previous_one_left_it(
    acs_emulator, demo_templates
):
    """One task takes every waiting row of the contact in turn: after a STOP, the next row must see the opt-out
    (it is read afresh, never from the batch that told the loop more rows were waiting)."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.interactions.services import inbound_process
    from apps.interactions.services.enqueue import deliveries_inline

    from .factories import ContactFactory, InboundMessageFactory

    contact = ContactFactory(channel="acs")
    start = timezone.now()
    stop, question, later = (
        InboundMessageFactory(contact=contact, text=text, received_at=start + timedelta(seconds=i))
        for i, text in enumerate(["STOP", "¿Cuándo es la conferencia?", "evento"])
    )
    with deliveries_inline():
        inbound_process(message_id=question.pk)  # a later row's task: it decides the oldest first

    assert routes() == ["opted_out", "opted_out", "opted_out"]
    assert [d.body["kind"] for d in acs_emulator.deliveries] == ["text"]  # the STOP confirmation, nothing else
    assert all(m.status == "processed" for m in Message.objects.filter(pk__in=[stop.pk, question.pk, later.pk]))
