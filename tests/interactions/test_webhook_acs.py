"""End to end through ACS: signed Event Grid delivery → webhook → RedisBroker worker → ACS emulator."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.interactions.exceptions import WindowClosedError
from apps.interactions.models import (
    Contact,
    Direction,
    InboundDelivery,
    Interaction,
    Message,
    MessageStatus,
    WebhookLog,
)
from apps.interactions.services import outbound_text_create, sweeper_run
from apps.message_templates.resolvers import resolver
from tests.emulators.acs_events import (
    CHANNEL_ID,
    WEBHOOK_SECRET,
    as_cloud_event,
    received_event,
    status_event,
    validation_event,
    webhook_url,
)

from .factories import IntentFactory, KeywordFactory, TemplateFactory
from .outages import redis_unreachable

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "254700000001"
PHONE = "+254700000001"


def deliver(client, events, *, secret=WEBHOOK_SECRET, **extra):
    return client.post(webhook_url(secret), json.dumps(events), content_type="application/json", **extra)


def template_body(name, values, *, to=PHONE, language="es"):
    """The notifications:send body ACS receives for a template (as the SDK serialises it)."""
    return {
        "kind": "template",
        "channelRegistrationId": CHANNEL_ID,
        "to": [to],
        "template": {
            "name": name,
            "language": language,
            "values": [{"kind": "text", "name": key, "text": value} for key, value in values],
            "bindings": {"kind": "whatsApp", "body": [{"refValue": key} for key, _ in values]},
        },
    }


def sent_templates(emulator):
    return [(d.body["template"]["name"], d.to) for d in emulator.deliveries if d.body["kind"] == "template"]


def test_signed_delivery_is_answered_with_exactly_one_template_send(client, acs_emulator, demo_templates, drain):
    event = received_event(text="¿Cuándo es la conferencia?", sender=SENDER)

    response = deliver(client, [event])
    drain()

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    assert len(acs_emulator.deliveries) == 1
    interaction = Interaction.objects.get()
    delivery = acs_emulator.deliveries[0]
    assert delivery.to == PHONE
    assert delivery.body == template_body("vea_event_info", [("nombre", "amigo"), ("tema", interaction.entity)])
    reply = interaction.reply
    assert delivery.repeatability_request_id == reply.idempotency_key
    assert reply.status == MessageStatus.SENT
    assert reply.provider_message_id == delivery.message_id
    assert interaction.route == "template"
    assert interaction.intent == "evento"
    assert interaction.intent_source == "keyword"
    assert interaction.success is True
    inbound = interaction.message
    assert inbound.provider_message_id == event["data"]["messageId"]
    assert inbound.status == MessageStatus.PROCESSED
    assert inbound.contact.phone == PHONE
    assert inbound.raw_payload == event
    log = WebhookLog.objects.get()
    assert (log.channel, log.method, log.path, log.status_code, log.events) == (
        "acs",
        "POST",
        "/api/v1/whatsapp/webhook/",
        200,
        1,
    )
    assert WEBHOOK_SECRET not in json.dumps(log.headers) + log.path


def test_event_grid_validation_handshake_echoes_the_code(client, acs_emulator):
    response = deliver(
        client, [validation_event("512d38b6-c7b8-40c8-89fe-f46f9e9622b6")], HTTP_AEG_EVENT_TYPE="SubscriptionValidation"
    )

    assert response.status_code == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert not Message.objects.exists()


def test_cloudevents_options_handshake_allows_event_grid(client, acs_emulator):
    response = client.options(webhook_url(), HTTP_WEBHOOK_REQUEST_ORIGIN="eventgrid.azure.net")

    assert response.status_code == 200
    assert response["WebHook-Allowed-Origin"] in ("eventgrid.azure.net", "*")


def test_cloudevents_delivery_is_processed_like_an_event_grid_one(client, acs_emulator, demo_templates, drain):
    response = client.post(
        webhook_url(),
        json.dumps(as_cloud_event(received_event(text="evento", sender=SENDER))),
        content_type="application/cloudevents+json; charset=utf-8",
    )
    drain()

    assert response.status_code == 200
    assert sent_templates(acs_emulator) == [("vea_event_info", PHONE)]


def test_a_wrong_secret_is_refused_and_nothing_is_stored(client, acs_emulator, demo_templates):
    response = deliver(client, [received_event(text="evento")], secret="wrong-secret")

    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "INVALID_SIGNATURE",
            "message": "The request signature or secret is missing or wrong.",
            "details": {},
        }
    }
    assert not Message.objects.exists()
    log = WebhookLog.objects.get()
    assert (log.status_code, log.body) == (403, "")


def test_every_item_of_a_batch_is_handled(client, acs_emulator, demo_templates, drain):
    events = [
        received_event(text="evento", sender="254700000011"),
        received_event(text="quiero donar", sender="254700000012"),
        status_event(message_id="not-ours-yet", status="Delivered"),
        received_event(text="conferencia", sender="254700000013"),
    ]

    response = deliver(client, events)
    drain()

    assert response.status_code == 200
    assert sorted(sent_templates(acs_emulator)) == [
        ("vea_event_info", "+254700000011"),
        ("vea_event_info", "+254700000013"),
        ("vea_info_donativos", "+254700000012"),
    ]
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 3
    assert Interaction.objects.filter(route="template", success=True).count() == 3
    assert WebhookLog.objects.get().events == 4


def test_the_same_event_delivered_three_times_concurrently_gets_one_reply(acs_emulator, demo_templates, drain):
    event = received_event(text="evento", sender=SENDER)
    barrier = threading.Barrier(3)
    statuses: list[int] = []

    def post_once():
        try:
            barrier.wait(timeout=5)
            statuses.append(deliver(Client(), [event]).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post_once) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    drain()

    assert statuses == [200, 200, 200]
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1
    assert Contact.objects.count() == 1
    assert len(acs_emulator.deliveries) == 1
    assert WebhookLog.objects.count() == 3


def test_a_duplicate_delivery_a_day_later_does_nothing(client, acs_emulator, demo_templates, drain):
    event = received_event(text="evento", sender=SENDER)
    deliver(client, [event])
    drain()

    response = deliver(client, [event])
    drain()

    assert response.status_code == 200
    assert len(acs_emulator.deliveries) == 1
    assert Interaction.objects.count() == 1


def test_two_messages_from_one_contact_are_answered_in_order(client, acs_emulator, demo_templates, drain):
    now = datetime.now(UTC)
    first = received_event(text="evento", sender=SENDER, received_at=now - timedelta(seconds=2))
    second = received_event(text="quiero donar", sender=SENDER, received_at=now - timedelta(seconds=1))

    # The later message arrives first in the batch: arrival order is the provider's time, not the batch's.
    deliver(client, [second, first])
    drain()

    assert sent_templates(acs_emulator) == [("vea_event_info", PHONE), ("vea_info_donativos", PHONE)]
    replies = Message.objects.filter(direction=Direction.OUTBOUND).order_by("id")
    assert [m.in_reply_to.provider_message_id for m in replies] == [
        first["data"]["messageId"],
        second["data"]["messageId"],
    ]


def test_status_events_out_of_order_only_move_the_status_forward(client, acs_emulator, demo_templates, drain):
    deliver(client, [received_event(text="evento", sender=SENDER)])
    drain()
    reply = Message.objects.get(direction=Direction.OUTBOUND)
    provider_id = reply.provider_message_id

    for status in ("Read", "Sent", "Delivered", "Read"):
        assert deliver(client, [status_event(message_id=provider_id, status=status)]).status_code == 200

    reply.refresh_from_db()
    assert reply.status == MessageStatus.READ
    assert reply.read_at is not None
    assert reply.delivered_at is not None
    assert reply.sent_at is not None
    assert sorted(reply.status_updates.values_list("status", flat=True)) == ["delivered", "read", "sent"]

    deliver(client, [status_event(message_id=provider_id, status="Failed", error_code="131026")])
    reply.refresh_from_db()
    assert reply.status == MessageStatus.READ  # read is final: a late failure does not undo it


def test_a_failed_status_is_terminal_and_records_the_provider_code(client, acs_emulator, demo_templates, drain):
    deliver(client, [received_event(text="evento", sender=SENDER)])
    drain()
    reply = Message.objects.get(direction=Direction.OUTBOUND)

    deliver(
        client,
        [
            status_event(
                message_id=reply.provider_message_id,
                status="Failed",
                error_code="131026",
                error_message="Message Undeliverable.",
            )
        ],
    )
    deliver(client, [status_event(message_id=reply.provider_message_id, status="Delivered")])

    reply.refresh_from_db()
    assert (reply.status, reply.error_code, reply.error_message) == ("failed", "131026", "Message Undeliverable.")
    assert reply.failed_at is not None


def test_acs_429_then_202_delivers_once_after_the_retry(client, acs_emulator, demo_templates, drain):
    acs_emulator.fail_next(
        429, headers={"Retry-After": "1"}, body={"error": {"code": "TooManyRequests", "message": "slow down"}}
    )

    deliver(client, [received_event(text="evento", sender=SENDER)])
    drain()

    assert len(acs_emulator.deliveries) == 1
    assert [r.status for r in acs_emulator.refused] == [429]
    reply = Message.objects.get(direction=Direction.OUTBOUND)
    assert (reply.status, reply.attempts) == (MessageStatus.SENT, 2)
    first_try = acs_emulator.refused[0].headers["Repeatability-Request-ID"]
    assert first_try == acs_emulator.deliveries[0].repeatability_request_id == reply.idempotency_key


def test_a_permanent_send_error_is_recorded_without_retrying(client, acs_emulator, demo_templates, drain):
    acs_emulator.fail_next(400, body={"error": {"code": "BadRequest", "message": "Invalid recipient"}})

    deliver(client, [received_event(text="evento", sender=SENDER)])
    drain()

    reply = Message.objects.get(direction=Direction.OUTBOUND)
    assert reply.status == MessageStatus.FAILED
    assert reply.attempts == 1
    assert reply.error_message
    assert acs_emulator.deliveries == []
    assert len(acs_emulator.refused) == 1


def test_broker_down_at_ingest_commits_the_message_and_the_sweeper_gets_it_answered(
    client, acs_emulator, demo_templates, broker, drain
):
    # The direct path; a deferred delivery never meets the broker in the webhook (test_deferred_ingest.py).
    with redis_unreachable(broker):
        response = deliver(client, [received_event(text="evento", sender=SENDER)])
    drain()

    assert response.status_code == 200
    assert Message.objects.get(direction=Direction.INBOUND).status == MessageStatus.RECEIVED
    assert acs_emulator.deliveries == []

    report = sweeper_run(older_than_seconds=0)
    drain()

    assert (report.deliveries, report.inbound, report.outbound) == (0, 1, 0)
    assert sent_templates(acs_emulator) == [("vea_event_info", PHONE)]
    assert Message.objects.get(direction=Direction.INBOUND).status == MessageStatus.PROCESSED
    assert not InboundDelivery.objects.exists()


def test_outside_the_window_no_free_form_text_is_sent(acs_emulator, settings):
    contact = Contact.objects.create(phone=PHONE, channel="acs", last_inbound_at=timezone.now() - timedelta(hours=25))

    with pytest.raises(WindowClosedError) as caught:
        outbound_text_create(contact=contact, text="¿Sigues ahí?")

    assert caught.value.extra["template"] == settings.FALLBACK_TEMPLATE_NAME
    assert caught.value.code == "WINDOW_CLOSED"
    assert not Message.objects.exists()


def test_a_window_closed_failure_is_recorded_and_not_resent(client, acs_emulator, demo_templates, drain, settings):
    deliver(client, [received_event(text="STOP", sender=SENDER)])
    drain()
    confirmation = Message.objects.get(direction=Direction.OUTBOUND)
    assert confirmation.kind == "text"

    deliver(
        client,
        [
            status_event(
                message_id=confirmation.provider_message_id,
                status="Failed",
                error_code="131047",
                error_message="Re-engagement message",
            )
        ],
    )
    drain()

    confirmation.refresh_from_db()
    assert confirmation.status == MessageStatus.FAILED
    assert confirmation.error_code == "131047"
    assert "vea_request_received" in confirmation.error_message
    interaction = Interaction.objects.get()
    assert interaction.success is False
    assert interaction.context["window_closed"] is True
    assert len(acs_emulator.deliveries) == 1


def test_a_template_parameter_violation_is_refused_with_the_reason(client, acs_emulator, demo_templates, drain):
    ministry = TemplateFactory(name="vea_contacto_ministerio", parameters=["pastor"], body_text="Pastor: {{pastor}}")
    KeywordFactory(intent=IntentFactory(name="ministerio", template=ministry), phrase="pastor")
    from apps.message_templates.services import intent_index_invalidate

    intent_index_invalidate()

    deliver(client, [received_event(text="pastor", sender=SENDER)])
    drain()

    interaction = Interaction.objects.get()
    assert interaction.route == "template"
    assert interaction.success is False
    assert interaction.error == "Missing value for parameter 'pastor'."
    assert interaction.context["validation_errors"] == ["Missing value for parameter 'pastor'."]
    # Nothing invalid leaves; the contact is told their message arrived.
    assert sent_templates(acs_emulator) == [("vea_request_received", PHONE)]


@resolver("test_broken_query")
def _broken_query(*, context):
    with connection.cursor() as cursor:
        cursor.execute("SELECT nope FROM interactions_no_such_table")
    return {}


@pytest.mark.parametrize(
    "source",
    [
        {"query": "SELECT 1 AS x FROM WHERE"},
        {"query": "SELECT pg_sleep(2) AS slept", "timeout_ms": 50},
        {"kind": "python", "resolver": "test_broken_query", "query": ""},
    ],
    ids=["syntax error", "timeout", "resolver database error"],
)
def test_a_failing_data_source_gets_the_fallback_in_the_same_transaction(
    source, client, acs_emulator, demo_templates, drain
):
    """The template reply runs in the decision's transaction without a savepoint of its own: whatever fails in
    the data source is rolled back to the data source's savepoint, and the fallback and the Interaction row
    still commit."""
    from apps.message_templates.services import intent_index_invalidate

    from ..message_templates.factories import DataSourceFactory

    demo_templates.event_info.data_source = DataSourceFactory(name="failing", **source)
    demo_templates.event_info.save()
    intent_index_invalidate()

    deliver(client, [received_event(text="evento", sender=SENDER)])
    drain()

    interaction = Interaction.objects.get()
    assert (interaction.route, interaction.success) == ("template", False)
    assert interaction.error.startswith("Data source 'failing'")
    assert interaction.context["fallback"] == "vea_request_received"
    assert interaction.reply.template_name == "vea_request_received"
    assert sent_templates(acs_emulator) == [("vea_request_received", PHONE)]


def test_stop_opts_out_until_start(client, acs_emulator, demo_templates, drain):
    contact_messages = ["STOP", "evento", "START", "evento"]
    for text in contact_messages:
        deliver(client, [received_event(text=text, sender=SENDER)])
        drain()

    kinds = [
        (d.body["kind"], d.body.get("content") or d.body.get("template", {}).get("name"))
        for d in acs_emulator.deliveries
    ]
    assert kinds == [
        ("text", "You have unsubscribed and will not receive more messages from us. Reply START to subscribe again."),
        ("text", "You are subscribed again. Reply STOP at any time to unsubscribe."),
        ("template", "vea_event_info"),
    ]
    routes = list(Interaction.objects.order_by("message__received_at", "id").values_list("route", flat=True))
    assert routes == ["opted_out", "opted_out", "opted_out", "template"]
    assert Contact.objects.get().opted_out_at is None


def test_spanish_stop_word_gets_a_spanish_confirmation(client, acs_emulator, demo_templates, drain):
    deliver(client, [received_event(text="Baja", sender=SENDER)])
    drain()

    assert acs_emulator.deliveries[0].body["content"].startswith("Has cancelado tu suscripción")
    assert Contact.objects.get().opted_out_at is not None


def test_an_item_without_any_sender_is_skipped_and_the_rest_of_the_batch_handled(
    client, acs_emulator, demo_templates, drain
):
    nobody = received_event(text="evento", sender="", bsuid="")
    bsuid_only = received_event(text="evento", sender="", bsuid="US.13491208655302741918")

    response = deliver(client, [nobody, bsuid_only])
    drain()

    assert response.status_code == 200
    inbound = Message.objects.get(direction=Direction.INBOUND)
    assert (inbound.contact.phone, inbound.contact.bsuid) == (None, "US.13491208655302741918")
    assert [d.to for d in acs_emulator.deliveries] == ["US.13491208655302741918"]


def test_an_acs_timeout_after_the_request_left_is_retried_with_the_same_key_and_delivered_once(
    client, acs_emulator, demo_templates, drain, settings
):
    settings.CHANNEL_HTTP_TIMEOUT_SECONDS = 0.5
    # ACS accepts the send but the answer comes too late: Relay cannot know it arrived.
    acs_emulator.fail_next(202, delay=1.5, after_processing=True)

    deliver(client, [received_event(text="evento", sender=SENDER)])
    drain()

    reply = Message.objects.get(direction=Direction.OUTBOUND)
    assert (reply.status, reply.attempts) == (MessageStatus.SENT, 2)
    # ACS is idempotent on Repeatability-Request-ID: the retry is not a second message.
    assert len(acs_emulator.deliveries) == 1
    assert acs_emulator.deliveries[0].repeatability_request_id == reply.idempotency_key
