"""The hot paths written as single statements (ingest_sql, the outbound claim and "sent" record) against the
ORM path they replace: same rows, same rules, and the fallbacks for what they do not cover."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import dramatiq
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.channels.base import DeliveryStatus, InboundEvent, Media, MessageKind, StatusEvent
from apps.interactions.models import Contact, InboundDelivery, Message, MessageStatus, WebhookLog
from apps.interactions.services import (
    events_ingest,
    headers_redact,
    inbound_deliveries_materialize,
    outbound_deliver,
    status_record,
)
from apps.interactions.services.deferred import delivery_defer
from apps.interactions.services.ingest import inbound_fields, webhook_log_fields
from apps.interactions.services.ingest_sql import Stored, inbound_store_one_statement
from tests.support import wait_until

from .factories import ContactFactory, InboundMessageFactory, InteractionFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+254700000001"
BSUID = "US.13491208655302741918"
LOG = {"method": "POST", "path": "/api/v1/whatsapp/webhook/", "headers": {"Authorization": "x"}, "body": "{}"}


def event(**overrides) -> InboundEvent:
    fields = {
        "channel": "acs",
        "provider_message_id": str(uuid.uuid4()),
        "sender_phone": PHONE,
        "sender_bsuid": "",
        "received_at": timezone.now(),
        "text": "Hola",
        "profile_name": "Wanjiru",
    }
    fields.update(overrides)
    return InboundEvent(**fields)


def queued(broker, queue: str = "default") -> list[tuple]:
    """The arguments of the messages waiting on `queue` in the real Redis broker."""
    key = f"{broker.namespace}:{queue}"
    return [
        dramatiq.Message.decode(broker.client.hget(f"{key}.msgs", message_id)).args
        for message_id in broker.client.lrange(key, 0, -1)
    ]


def ingest(item: InboundEvent, **kwargs):
    return events_ingest(channel=item.channel, events=[item], log={**LOG, "status_code": 200}, **kwargs)


def test_one_inbound_message_is_one_statement_with_its_log(broker):
    with CaptureQueriesContext(connection) as queries:
        result = ingest(event())

    assert len(queries.captured_queries) == 1
    message = Message.objects.get()
    assert result.messages[0].pk == message.pk
    assert (message.status, message.text, message.contact.phone) == (MessageStatus.RECEIVED, "Hola", PHONE)
    assert message.contact.profile_name == "Wanjiru"
    assert message.contact.last_inbound_at == message.received_at
    log = WebhookLog.objects.get()
    assert (log.events, log.status_code, log.headers) == (1, 200, {"Authorization": "[redacted]"})
    # Processing was enqueued once the statement committed.
    assert queued(broker) == [(message.pk,)]


def test_a_duplicate_delivery_inserts_nothing_but_is_logged(broker):
    item = event()
    ingest(item)
    again = ingest(item)

    assert (again.messages, again.duplicates) == ([], 1)
    assert Message.objects.count() == 1
    assert WebhookLog.objects.count() == 2
    assert len(queued(broker)) == 1


def test_a_known_contact_is_updated_like_the_orm_path_does():
    contact = ContactFactory(phone=PHONE, profile_name="Old", channel="twilio", last_inbound_at=None)
    stamp = contact.updated_at
    later = timezone.now()
    ingest(event(received_at=later, profile_name="New"))
    ingest(event(received_at=later - timedelta(hours=3), profile_name=""))  # a late retry of an old message

    contact.refresh_from_db()
    assert Contact.objects.count() == 1
    assert (contact.profile_name, contact.channel) == ("New", "acs")
    assert contact.last_inbound_at == later  # only moves forward
    assert contact.updated_at > stamp
    unchanged = contact.updated_at
    ingest(event(received_at=timezone.now(), profile_name="New"))
    contact.refresh_from_db()
    assert contact.updated_at == unchanged  # nothing but last_inbound_at changed


def test_a_bsuid_contact_gains_the_phone_in_the_same_statement():
    ContactFactory(phone=None, bsuid=BSUID)
    with CaptureQueriesContext(connection) as queries:
        ingest(event(sender_bsuid=BSUID))

    assert len(queries.captured_queries) == 1
    contact = Contact.objects.get()
    assert (contact.phone, contact.bsuid) == (PHONE, BSUID)


def test_a_bsuid_new_to_a_known_phone_falls_back_and_links_them():
    by_phone = ContactFactory(phone=PHONE, bsuid=None)
    with CaptureQueriesContext(connection) as queries:
        result = ingest(event(sender_bsuid=BSUID))

    # The statement hit the phone's unique index, left nothing behind, and the ORM path linked the two.
    assert len(queries.captured_queries) > 1
    contact = Contact.objects.get()
    assert (contact.pk, contact.phone, contact.bsuid) == (by_phone.pk, PHONE, BSUID)
    assert result.messages[0].contact_id == by_phone.pk
    assert Message.objects.count() == 1
    assert WebhookLog.objects.count() == 1


def test_a_sender_with_no_usable_address_is_skipped_and_logged():
    result = ingest(event(sender_phone="not a number"))

    assert (result.messages, result.skipped) == ([], 1)
    assert not Message.objects.exists()
    assert WebhookLog.objects.get().events == 1


def test_inside_a_callers_transaction_a_fallback_does_not_poison_it():
    from django.db import transaction

    ContactFactory(phone=PHONE, bsuid=None)
    with transaction.atomic():
        result = ingest(event(sender_bsuid=BSUID))
        assert Message.objects.filter(pk=result.messages[0].pk).exists()
    assert Contact.objects.get().bsuid == BSUID


def test_concurrent_first_messages_from_one_number_make_one_contact():
    barrier = threading.Barrier(4)
    errors = []

    def send():
        try:
            barrier.wait()
            ingest(event())
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Contact.objects.count() == 1
    assert Message.objects.count() == 4


# --- deferred deliveries: stored and taken by one statement ------------------------------------------------


def defer(item: InboundEvent) -> int:
    """The webhook's step with deferred ingest: the delivery row; returns its id."""
    assert delivery_defer(event=item, log={**LOG, "headers": headers_redact(LOG["headers"]), "status_code": 200})
    return InboundDelivery.objects.latest("pk").pk


def stored_rows(message: Message) -> dict:
    """What a stored message leaves behind, without keys and clocks."""
    skip = {"id", "contact", "created_at", "updated_at"}
    row = {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields if f.name not in skip}
    contact = message.contact
    row["contact"] = (contact.phone, contact.bsuid, contact.profile_name, contact.channel, contact.last_inbound_at)
    return row


def test_a_deferred_delivery_is_stored_with_the_rows_the_webhook_would_have_written():
    rich = {
        "received_at": timezone.now() - timedelta(minutes=5),
        "kind": MessageKind.IMAGE,
        "text": "مرحبا 🎉 <b>",
        "media": Media(mime_type="image/jpeg", provider_id="m-1", caption="foto"),
        "payload": "btn-1",
        "latitude": -1.28,
        "longitude": 36.82,
        "raw": {"id": "x", "nested": [{"a": 1}]},
    }
    other = "+254700000002"
    direct = ingest(event(provider_message_id="direct-1", **rich)).messages[0]
    delivery_id = defer(event(provider_message_id="deferred-1", sender_phone=other, **rich))

    with CaptureQueriesContext(connection) as queries:
        assert inbound_deliveries_materialize(delivery_id=delivery_id) == 1

    # The sender's waiting deliveries, then one statement that stores this one and deletes its row.
    assert len(queries.captured_queries) == 2
    assert not InboundDelivery.objects.exists()
    deferred = Message.objects.get(provider_message_id="deferred-1")
    direct = Message.objects.get(pk=direct.pk)
    expected = stored_rows(direct)
    expected.update(provider_message_id="deferred-1", contact=(other, *expected["contact"][1:]))
    assert stored_rows(deferred) == expected
    first, second = WebhookLog.objects.order_by("pk")
    skip = {"id", "created_at"}
    assert {f.attname: getattr(second, f.attname) for f in WebhookLog._meta.concrete_fields if f.name not in skip} == {
        f.attname: getattr(first, f.attname) for f in WebhookLog._meta.concrete_fields if f.name not in skip
    }


def test_a_deferred_delivery_already_taken_stores_nothing():
    item = event()
    delivery_id = defer(item)
    InboundDelivery.objects.filter(pk=delivery_id).delete()  # another task stored it after this one listed it
    contact_keywords, fields = inbound_fields(item)

    result = inbound_store_one_statement(
        contact_keywords=contact_keywords,
        fields=fields,
        log=webhook_log_fields(channel="acs", events=1, status_code=200, **LOG),
        take=delivery_id,
    )

    assert result == Stored(message=None, taken=False)
    assert not Message.objects.exists() and not WebhookLog.objects.exists() and not Contact.objects.exists()
    assert inbound_deliveries_materialize(delivery_id=delivery_id) == 0


def test_a_deferred_delivery_another_task_is_storing_is_stored_once():
    """Two tasks meet on one delivery: the second's DELETE waits for the first's commit, then takes nothing."""
    delivery_id = defer(event())
    holder_pid = {}
    results = []
    commit = threading.Event()

    def first_task():
        try:
            with transaction.atomic():  # the first task, stopped just before its commit
                holder_pid["pid"] = connection.connection.info.backend_pid
                results.append(("first", inbound_deliveries_materialize(delivery_id=delivery_id)))
                commit.wait(10)
        finally:
            connection.close()

    def second_task():
        try:
            results.append(("second", inbound_deliveries_materialize(delivery_id=delivery_id)))
        finally:
            connection.close()

    first = threading.Thread(target=first_task)
    first.start()
    wait_until(lambda: results, timeout=10, interval=0.01, what="the first stored it (uncommitted)")
    second = threading.Thread(target=second_task)
    second.start()

    def second_waits() -> bool:  # blocked on the first's row lock
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND %s = ANY(pg_blocking_pids(pid))",
                [holder_pid["pid"]],
            )
            return cursor.fetchone()[0] > 0

    wait_until(second_waits, timeout=10, interval=0.01, what="the second task waiting")
    commit.set()
    first.join()
    second.join()

    assert sorted(results) == [("first", 1), ("second", 0)]
    assert Message.objects.count() == 1 and WebhookLog.objects.count() == 1
    assert not InboundDelivery.objects.exists()


def test_a_deferred_bsuid_new_to_a_known_phone_falls_back_and_links_them():
    by_phone = ContactFactory(phone=PHONE, bsuid=None)

    assert inbound_deliveries_materialize(delivery_id=defer(event(sender_bsuid=BSUID))) == 1

    contact = Contact.objects.get()
    assert (contact.pk, contact.phone, contact.bsuid) == (by_phone.pk, PHONE, BSUID)
    assert Message.objects.get().contact_id == by_phone.pk
    assert WebhookLog.objects.count() == 1
    assert not InboundDelivery.objects.exists()


def test_a_deferred_delivery_from_a_known_contact_updates_it_like_the_direct_path():
    contact = ContactFactory(phone=PHONE, profile_name="Old", channel="twilio", last_inbound_at=None)
    later = timezone.now()

    assert inbound_deliveries_materialize(delivery_id=defer(event(received_at=later, profile_name="New"))) == 1

    contact.refresh_from_db()
    assert (contact.profile_name, contact.channel, contact.last_inbound_at) == ("New", "acs", later)
    assert Contact.objects.count() == 1


# --- outbound: claim and sent record ------------------------------------------------------------------------


def test_a_send_is_claimed_and_recorded_in_few_statements(acs_emulator):
    message = OutboundMessageFactory(channel="acs", kind="text", text="Hola", contact__channel="acs")
    with CaptureQueriesContext(connection) as queries:
        outbound_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id == acs_emulator.deliveries[0].message_id
    assert (message.attempts, message.error_code) == (1, "")
    assert message.sent_at is not None and message.first_attempt_at is not None
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert "BEGIN" not in statements and "SAVEPOINT" not in statements
    assert statements.count("UPDATE") == 2  # the claim, the sent record (which also looks for early receipts)
    # The row's contact and status, the lock, the contact's pending ids, the row itself, the unlock.
    assert statements.count("SELECT") == 5


# --- outbound: the reply insert -------------------------------------------------------------------------------


def test_a_reply_is_one_insert_with_the_rows_the_orm_would_write(broker):
    """outbound_sql against Model.save on the same input: every column alike but the ids and times."""
    from apps.interactions.services import outbound_template_create

    from .factories import TemplateFactory

    contact = ContactFactory(channel="acs")
    template = TemplateFactory(parameters=["nombre"], body_text="Hola {{nombre}}.")
    with CaptureQueriesContext(connection) as queries:
        raw = outbound_template_create(contact=contact, template=template, values={"nombre": "Ana"})
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert statements == ["SELECT", "INSERT"]  # the key's pre-check, the row: no BEGIN, no SAVEPOINT

    orm = Message(
        contact=contact,
        direction="out",
        channel="acs",
        status=MessageStatus.QUEUED,
        idempotency_key=str(uuid.uuid4()),
        kind="template",
        text=raw.text,
        template_name=raw.template_name,
        template_language=raw.template_language,
        template_parameters=[["nombre", "Ana"]],
        received_at=timezone.now(),
    )
    orm.save()
    skip = {"id", "idempotency_key", "received_at", "created_at", "updated_at"}
    columns = [f.attname for f in Message._meta.concrete_fields if f.attname not in skip]
    assert (
        Message.objects.filter(pk=raw.pk).values(*columns).get()
        == Message.objects.filter(pk=orm.pk).values(*columns).get()
    )
    assert raw.template_parameters == [["nombre", "Ana"]] and raw.attempts == 0 and raw.media == {}


def test_an_insert_whose_key_is_taken_writes_nothing_and_the_holder_is_returned(broker):
    """The race the pre-check cannot see: another worker inserted the key in between."""
    from apps.interactions.services import outbound_text_create
    from apps.interactions.services.hot_sql import message_insert_unless_key_taken

    contact = ContactFactory(channel="acs", last_inbound_at=timezone.now())
    holder = outbound_text_create(contact=contact, text="Uno", idempotency_key=str(uuid.uuid4()))
    now = timezone.now()
    twin = Message(
        contact=contact,
        direction="out",
        channel="acs",
        status=MessageStatus.QUEUED,
        idempotency_key=holder.idempotency_key,
        text="Dos",
        created_at=now,
        updated_at=now,
    )
    assert message_insert_unless_key_taken(twin) is False
    assert twin.pk is None
    assert list(Message.objects.values_list("text", flat=True)) == ["Uno"]

    # The same key through the service returns the holder, never a second row.
    again = outbound_text_create(contact=contact, text="Dos", idempotency_key=holder.idempotency_key)
    assert again == holder
    assert Message.objects.count() == 1


def test_a_receipt_arriving_while_the_send_is_in_flight_is_applied(acs_emulator):
    """The status webhook lands between the provider accepting the send and Relay recording its id."""
    message = OutboundMessageFactory(channel="acs", kind="text", text="Hola", contact__channel="acs")
    original = acs_emulator._send

    def send_then_receipt(request):
        reply = original(request)
        provider_id = reply.body["receipts"][0]["messageId"]

        def webhook():
            try:
                status_record(
                    event=StatusEvent(
                        channel="acs",
                        provider_message_id=provider_id,
                        status=DeliveryStatus.DELIVERED,
                        occurred_at=timezone.now(),
                    )
                )
            finally:
                connection.close()

        arrival = threading.Thread(target=webhook)
        arrival.start()
        arrival.join()
        return reply

    acs_emulator._send = send_then_receipt
    try:
        outbound_deliver(message_id=message.pk)
    finally:
        acs_emulator._send = original

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert message.sent_at is not None and message.delivered_at is not None
    assert message.status_updates.count() == 1


def test_a_claim_from_a_stale_snapshot_takes_nothing(acs_emulator):
    message = OutboundMessageFactory(channel="acs", kind="text", text="Hola", contact__channel="acs")
    outbound_deliver(message_id=message.pk)
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.QUEUED)  # as an old snapshot would see it
    message.refresh_from_db()
    Message.objects.filter(pk=message.pk).update(attempts=5)  # …while another worker moved it on

    from apps.interactions.services.delivery import _claim

    assert _claim(message) == (None, False)
    assert len(acs_emulator.deliveries) == 1


def test_the_waiting_rows_are_the_ones_the_orm_query_returns():
    from apps.interactions.services.hot_sql import inbound_waiting, inbound_waiting_query

    contact = ContactFactory(profile_name="Wanjiru", language="sw")
    other = ContactFactory()
    now = timezone.now()
    # Arrival order is received_at, then id: the third row arrived first.
    rows = [
        InboundMessageFactory(
            contact=contact, received_at=now, media={"mime_type": "image/jpeg"}, raw_payload={"a": 1}
        ),
        InboundMessageFactory(contact=contact, received_at=now + timedelta(seconds=1)),
        InboundMessageFactory(contact=contact, received_at=now - timedelta(seconds=1), payload="btn-1"),
        InboundMessageFactory(contact=contact, received_at=now - timedelta(seconds=2), status=MessageStatus.PROCESSED),
    ]
    InboundMessageFactory(contact=other, received_at=now - timedelta(seconds=5))
    OutboundMessageFactory(contact=contact)

    def orm(skip):
        query = inbound_waiting_query(contact.pk).exclude(pk__in=skip).select_related("contact").defer("raw_payload")
        return list(query[:2])

    def loaded(message):
        # Every field but the deferred payload, decoded, and the contact that came with the row.
        fields = [f.attname for f in Message._meta.concrete_fields if f.attname != "raw_payload"]
        own = {name: getattr(message, name) for name in fields}
        return own, {f.attname: getattr(message.contact, f.attname) for f in Contact._meta.concrete_fields}

    for skip in (set(), {rows[2].pk}, {rows[2].pk, rows[0].pk}, {r.pk for r in rows}):
        expected = orm(skip)
        with CaptureQueriesContext(connection) as queries:
            got = inbound_waiting(contact.pk, skip=skip, limit=2)
            seen = [loaded(m) for m in got]
        assert len(queries.captured_queries) == 1
        assert seen == [loaded(m) for m in expected]
        assert [m.pk for m in got] == [m.pk for m in expected]
        assert all(m.get_deferred_fields() == {"raw_payload"} and not m._state.adding for m in got)
    assert [m.pk for m in inbound_waiting(contact.pk, skip=set(), limit=2)] == [rows[2].pk, rows[0].pk]
    first = inbound_waiting(contact.pk, skip={rows[2].pk}, limit=1)[0]
    assert first.media == {"mime_type": "image/jpeg"} and first.raw_payload == {"a": 1}  # the deferred field loads


def test_the_waiting_rows_wait_behind_an_unanswered_ai_message_in_the_same_statement():
    from apps.interactions.services.hot_sql import ai_answer_waiting, inbound_waiting

    contact = ContactFactory()
    later = InboundMessageFactory(contact=contact)
    pending = InteractionFactory(
        route="ai", context={"ai_pending": True}, message__contact=contact, message__status=MessageStatus.PROCESSED
    )
    InteractionFactory(route="ai", context={"ai_pending": True}, message__status=MessageStatus.PROCESSED)  # another
    horizon = timezone.now() - timedelta(minutes=5)

    def waiting(since):
        return [m.pk for m in inbound_waiting(contact.pk, skip=set(), limit=2, ai_since=since)]

    with CaptureQueriesContext(connection) as queries:
        assert waiting(horizon) == []
    assert len(queries.captured_queries) == 1  # the check is part of the read
    assert ai_answer_waiting(contact.pk, horizon)  # the ORM query agrees
    assert waiting(None) == [later.pk]  # without a horizon nothing waits
    assert waiting(timezone.now() + timedelta(seconds=1)) == [later.pk]  # the pending answer is past the horizon
    pending.reply = OutboundMessageFactory(contact=contact)
    pending.save()
    assert waiting(horizon) == [later.pk]  # answered: the later message's turn
    assert not ai_answer_waiting(contact.pk, horizon)
