"""Deferred ingest: a webhook stores a one-message delivery as one row and answers; the worker makes the contact,
message and WebhookLog rows from it, in the sender's arrival order, once per provider message id."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.channels.base import InboundEvent, Media, MessageKind
from apps.interactions.models import (
    Contact,
    Direction,
    InboundDelivery,
    Interaction,
    Message,
    MessageStatus,
    WebhookLog,
)
from apps.interactions.pump import DeliveryPump
from apps.interactions.services import inbound_deliveries_materialize, sweeper_run
from apps.interactions.services.deferred import NOTIFY_CHANNEL, delivery_decode, delivery_encode
from apps.interactions.tasks import inbound_deliveries_materialize_task
from tests.emulators.acs_events import received_event, webhook_url
from tests.support import wait_until

from .outages import redis_unreachable

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "254700000031"
PHONE = "+254700000031"


@pytest.fixture(autouse=True)
def _deferred(settings):
    settings.WEBHOOK_DEFERRED_INGEST = True


def deliver(client, event):
    return client.post(webhook_url(), json.dumps([event]), content_type="application/json")


def pump_of(broker) -> DeliveryPump:
    return next(m for m in broker.middleware if isinstance(m, DeliveryPump))


def test_the_webhook_stores_one_row_and_a_worker_that_starts_later_makes_the_message_and_answers(
    client, acs_emulator, demo_templates, broker, request
):
    with CaptureQueriesContext(connection) as queries:
        response = deliver(client, received_event(text="¿Cuándo es la conferencia?", sender=SENDER))

    assert response.status_code == 200
    # One statement: the row and its notification (no broker call from the webhook).
    assert len(queries) == 1 and queries[0]["sql"].startswith("WITH stored AS (INSERT INTO")
    delivery = InboundDelivery.objects.get()
    assert (delivery.channel, delivery.sender) == ("acs", PHONE)
    assert "eventgrid" not in delivery.delivery.lower()  # the ?code= secret is in no stored header or path
    assert not Message.objects.exists() and not Contact.objects.exists() and not WebhookLog.objects.exists()
    assert all(broker.do_qsize(queue) == 0 for queue in ("default", "outbound"))

    # No worker heard the notification: the pump of the worker that starts now catches up on what waits.
    request.getfixturevalue("drain")()

    message = Message.objects.get(direction=Direction.INBOUND)
    assert (message.contact.phone, message.text) == (PHONE, "¿Cuándo es la conferencia?")
    assert Interaction.objects.get(message=message).route == "template"
    assert len(acs_emulator.deliveries) == 1
    log = WebhookLog.objects.get()
    assert (log.channel, log.status_code, log.events, log.path) == ("acs", 200, 1, "/api/v1/whatsapp/webhook/")
    assert not InboundDelivery.objects.exists()


def test_a_delivery_sent_three_times_is_one_message_and_one_reply(client, acs_emulator, demo_templates, drain):
    event = received_event(text="conferencia", sender=SENDER)

    answers = [deliver(client, event).status_code for _ in range(3)]
    assert InboundDelivery.objects.count() == 3  # the webhook cannot tell a retry from a new message
    drain()

    assert answers == [200, 200, 200]
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1
    assert len(acs_emulator.deliveries) == 1
    assert WebhookLog.objects.count() == 3  # each delivery is logged, as on the direct path
    assert not InboundDelivery.objects.exists()


def test_a_later_task_stores_the_senders_earlier_deliveries_first(client, acs_emulator, broker):
    first = received_event(text="primero", sender=SENDER)
    second = received_event(text="segundo", sender=SENDER)
    other = received_event(text="otro", sender="254700000032")
    for event in (first, second, other):
        assert deliver(client, event).status_code == 200
    earlier, later, others = InboundDelivery.objects.order_by("pk").values_list("pk", flat=True)

    # The later delivery's task runs first (two workers, a retry): it takes the earlier one too, in order.
    assert inbound_deliveries_materialize(delivery_id=later) == 2
    assert inbound_deliveries_materialize(delivery_id=earlier) == 0

    texts = list(Message.objects.filter(contact__phone=PHONE).order_by("pk").values_list("text", flat=True))
    assert texts == ["primero", "segundo"]
    assert list(InboundDelivery.objects.values_list("pk", flat=True)) == [others]  # another sender's waits


def test_a_running_workers_pump_sends_each_notified_delivery_at_once(
    client, acs_emulator, demo_templates, broker, worker
):
    pump = pump_of(broker)
    assert pump.leading.wait(10)
    with connection.cursor() as cursor:  # a stray notification is ignored, not fatal to the pump
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}, 'not-an-id'")

    for text in ("conferencia", "evento"):
        assert deliver(client, received_event(text=text, sender=SENDER)).status_code == 200
    wait_until(lambda: len(acs_emulator.deliveries) == 2, timeout=10, interval=0.01, what="both answered")

    texts = list(Message.objects.filter(direction=Direction.INBOUND).order_by("pk").values_list("text", flat=True))
    assert texts == ["conferencia", "evento"]
    wait_until(lambda: not InboundDelivery.objects.exists(), timeout=10, interval=0.01, what="deliveries taken")
    assert pump.leading.is_set()
    # /health/ names the worker that pumps (an ops engineer's check that deferred deliveries are being taken).
    wait_until(
        lambda: (client.get("/health/").json()["checks"]["broker"]["delivery_pump"] or {}).get("pid") == os.getpid(),
        timeout=10,
        interval=0.05,
        what="the pump in /health/",
    )


def test_with_the_broker_away_the_pump_catches_up_when_it_returns(
    client, acs_emulator, demo_templates, broker, worker, drain, caplog
):
    assert pump_of(broker).leading.wait(10)
    with redis_unreachable(broker):
        assert deliver(client, received_event(text="conferencia", sender=SENDER)).status_code == 200
        wait_until(
            lambda: "could not enqueue inbound_deliveries_materialize_task" in caplog.text,
            timeout=10,
            interval=0.01,
            what="the pump's failed enqueue",
        )
        assert InboundDelivery.objects.count() == 1  # kept: nothing is lost while the broker is away

    drain()  # the pump retries every second; no sweeper here

    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1
    assert len(acs_emulator.deliveries) == 1
    assert not InboundDelivery.objects.exists()


def test_one_worker_pumps_and_another_takes_over_when_it_stops(settings):
    settings.DELIVERY_PUMP_STANDBY_SECONDS = 0.05
    pumps = [DeliveryPump(), DeliveryPump()]
    try:
        for pump in pumps:
            pump.start()
        wait_until(lambda: any(p.leading.is_set() for p in pumps), timeout=10, interval=0.01, what="a leader")
        [leader] = [p for p in pumps if p.leading.is_set()]
        [standby] = [p for p in pumps if p is not leader]
        assert not standby.leading.wait(0.3)  # the lock is held: the other stands by

        leader.stop()

        assert standby.leading.wait(10)
    finally:
        for pump in pumps:
            pump.stop()


def test_a_delivery_no_pump_heard_is_swept_and_answered(client, acs_emulator, demo_templates, broker, request):
    assert deliver(client, received_event(text="conferencia", sender=SENDER)).status_code == 200

    report = sweeper_run(older_than_seconds=0)
    request.getfixturevalue("drain")()

    assert report.deliveries == 1
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1
    assert len(acs_emulator.deliveries) == 1
    assert not InboundDelivery.objects.exists()


def test_switched_off_the_webhook_stores_the_message_itself(client, acs_emulator, broker, settings):
    settings.WEBHOOK_DEFERRED_INGEST = False

    assert deliver(client, received_event(text="hola", sender=SENDER)).status_code == 200

    assert not InboundDelivery.objects.exists()
    assert Message.objects.get().contact.phone == PHONE
    assert WebhookLog.objects.count() == 1


def test_a_sender_with_no_usable_number_is_not_deferred_but_skipped_and_logged(client, acs_emulator, broker):
    assert deliver(client, received_event(text="hola", sender="12")).status_code == 200

    assert not InboundDelivery.objects.exists()
    assert not Message.objects.exists()
    assert WebhookLog.objects.count() == 1


def test_the_stored_delivery_gives_back_the_event_and_hostile_text_is_cleaned_when_stored(broker):
    event = InboundEvent(
        channel="meta",
        provider_message_id="wamid.deferred-1",
        sender_phone=PHONE,
        sender_bsuid="",
        received_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
        kind=MessageKind.IMAGE,
        text="a\ud800b\x00c مرحبا 🎉",
        profile_name="<script>x</script>",
        media=Media(mime_type="image/jpeg", provider_id="m-1", caption="foto"),
        payload="btn-1",
        latitude=-1.28,
        longitude=36.82,
        raw={"id": "wamid.deferred-1", "nested": [{"a": 1}]},
    )
    log = {"method": "POST", "path": "/p/", "headers": {"X-Hub-Signature-256": "[redacted]"}, "body": "{}"}
    text = delivery_encode(event, {**log, "status_code": 200, "duration_ms": 3})

    decoded, decoded_log = delivery_decode(text)

    assert text.isascii()
    assert decoded == event and decoded.raw == event.raw
    assert decoded_log["headers"] == {"X-Hub-Signature-256": "[redacted]"}
    InboundDelivery.objects.create(channel="meta", sender=PHONE, delivery=text)
    assert inbound_deliveries_materialize(delivery_id=InboundDelivery.objects.get().pk) == 1
    message = Message.objects.get()
    assert "\x00" not in message.text and "\ud800" not in message.text and "مرحبا 🎉" in message.text
    assert message.media["location"] == {"latitude": -1.28, "longitude": 36.82}
    assert message.contact.profile_name == "<script>x</script>"  # stored as given; escaped where it is shown


def test_the_workers_task_stores_and_answers_in_one_go_with_no_second_task(
    client, acs_emulator, demo_templates, broker
):
    assert deliver(client, received_event(text="conferencia", sender=SENDER)).status_code == 200
    broker.flush_all()
    delivery_id = InboundDelivery.objects.get().pk

    inbound_deliveries_materialize_task.fn(delivery_id)  # what the worker runs, in this thread

    assert len(acs_emulator.deliveries) == 1  # answered inside the task
    assert Message.objects.get(direction=Direction.INBOUND).status == MessageStatus.PROCESSED
    assert all(broker.do_qsize(queue) == 0 for queue in ("default", "outbound"))  # nothing left for another task


def test_an_unreadable_delivery_goes_to_the_webhook_log_and_does_not_hold_the_senders_later_ones(
    client, acs_emulator, demo_templates, broker
):
    InboundDelivery.objects.create(channel="acs", sender=PHONE, delivery='{"event": {"channel": "acs"}')  # cut off
    assert deliver(client, received_event(text="conferencia", sender=SENDER)).status_code == 200
    later = InboundDelivery.objects.latest("pk").pk

    assert inbound_deliveries_materialize_task.fn(later) is None  # no exception: nothing for Dramatiq to retry

    assert Message.objects.get(direction=Direction.INBOUND).text == "conferencia"
    assert len(acs_emulator.deliveries) == 1
    unreadable = WebhookLog.objects.exclude(error="").get()
    assert unreadable.body == '{"event": {"channel": "acs"}'  # kept as it was stored, for an operator
    assert "unreadable" in unreadable.error and "JSONDecodeError" in unreadable.error
    assert not InboundDelivery.objects.exists()


def test_a_delivery_stored_by_another_release_is_read(broker):
    """A delivery that waited across a deploy: a field this release does not know, an optional one missing."""
    event = InboundEvent(
        channel="acs",
        provider_message_id="old-release-1",
        sender_phone=PHONE,
        sender_bsuid="",
        received_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
        text="hola",
        media=Media(mime_type="image/jpeg", provider_id="m-1"),
    )
    data = json.loads(delivery_encode(event, {"method": "POST", "path": "/p/", "headers": {}, "body": "{}"}))
    data["event"]["sentiment"] = "positive"  # a newer release's field
    data["event"]["media"]["thumbnail"] = "t.jpg"
    del data["event"]["reply_to"], data["event"]["latitude"]  # an older release's row

    decoded, _ = delivery_decode(json.dumps(data))

    assert decoded == event
