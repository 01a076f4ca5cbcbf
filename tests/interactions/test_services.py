"""The pipeline's services called directly: contacts, idempotent outbound creation, statuses, the sweeper."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from apps.channels.base import DeliveryStatus, InboundEvent, StatusEvent
from apps.core.exceptions import ApplicationError
from apps.interactions.exceptions import IdempotencyKeyReused, OptedOutError, WindowClosedError
from apps.interactions.models import Contact, Direction, Message, MessageStatus, StatusUpdate, WebhookLog
from apps.interactions.services import (
    contact_resolve,
    inbound_record,
    outbound_deliver,
    outbound_media_create,
    outbound_template_create,
    outbound_text_create,
    payloads_purge,
    status_record,
    status_updates_replay,
    sweeper_run,
)
from apps.message_templates.services import TemplateValidationError

from .factories import ContactFactory, InboundMessageFactory, OutboundMessageFactory, WebhookLogFactory

pytestmark = pytest.mark.django_db(transaction=True)


def inbound_event(**overrides) -> InboundEvent:
    fields = {
        "channel": "acs",
        "provider_message_id": str(uuid.uuid4()),
        "sender_phone": "+254700000001",
        "sender_bsuid": "",
        "received_at": timezone.now(),
        "text": "Hola",
    }
    fields.update(overrides)
    return InboundEvent(**fields)


# --- contacts ---------------------------------------------------------------------------------------------


def test_a_contact_first_seen_by_bsuid_and_later_with_phone_is_one_contact():
    by_bsuid = contact_resolve(channel="acs", bsuid="US.13491208655302741918")
    with_phone = contact_resolve(channel="acs", phone="+254700000001", bsuid="US.13491208655302741918")

    assert with_phone.pk == by_bsuid.pk
    contact = Contact.objects.get()
    assert (contact.phone, contact.bsuid) == ("+254700000001", "US.13491208655302741918")


def test_a_contact_first_seen_by_phone_gains_its_bsuid_later():
    by_phone = contact_resolve(channel="twilio", phone="254700000001", profile_name="Ana")
    later = contact_resolve(channel="acs", phone="+254700000001", bsuid="US.99", profile_name="Ana M")

    assert later.pk == by_phone.pk
    contact = Contact.objects.get()
    assert (contact.phone, contact.bsuid, contact.profile_name, contact.channel) == (
        "+254700000001",
        "US.99",
        "Ana M",
        "acs",
    )


def test_concurrent_first_messages_create_one_contact():
    barrier = threading.Barrier(4)
    ids: list[int] = []

    def resolve():
        try:
            barrier.wait(timeout=5)
            ids.append(contact_resolve(channel="acs", phone="+254700000009").pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(ids) == 4
    assert len(set(ids)) == 1
    assert Contact.objects.count() == 1


def test_a_contact_needs_a_phone_or_a_bsuid():
    with pytest.raises(ValueError, match="phone number or a BSUID"):
        contact_resolve(channel="acs", phone="not a number")


# --- inbound ------------------------------------------------------------------------------------------------


def test_a_duplicate_inbound_event_is_recorded_once():
    event = inbound_event()

    first = inbound_record(event=event)
    second = inbound_record(event=event)

    assert first is not None
    assert second is None
    assert Message.objects.count() == 1


def test_last_inbound_at_only_moves_forward():
    now = timezone.now()
    inbound_record(event=inbound_event(received_at=now - timedelta(minutes=1)))
    inbound_record(event=inbound_event(received_at=now - timedelta(hours=3)))  # a late retry of an old message

    assert Contact.objects.get().last_inbound_at == now - timedelta(minutes=1)


# --- outbound creation ------------------------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_existing_message():
    contact = ContactFactory(channel="sandbox")

    first = outbound_text_create(contact=contact, text="Hola", idempotency_key="client-key-1")
    again = outbound_text_create(contact=contact, text="Hola otra vez", idempotency_key="client-key-1")

    assert again.pk == first.pk
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1
    # Any client key becomes a UUID: ACS requires one in Repeatability-Request-ID.
    assert str(uuid.UUID(first.idempotency_key)) == first.idempotency_key


def test_an_idempotency_key_of_another_contact_is_refused():
    outbound_text_create(contact=ContactFactory(), text="Hola", idempotency_key="shared")

    with pytest.raises(IdempotencyKeyReused):
        outbound_text_create(contact=ContactFactory(), text="Hola", idempotency_key="shared")


def test_replies_get_deterministic_keys():
    inbound = InboundMessageFactory()

    first = outbound_text_create(contact=inbound.contact, text="Gracias", in_reply_to=inbound)
    again = outbound_text_create(contact=inbound.contact, text="Gracias", in_reply_to=inbound)

    assert first.pk == again.pk
    assert first.status == MessageStatus.QUEUED
    assert first.channel == inbound.contact.channel


def test_the_channel_defaults_to_the_contacts_then_the_default_channel(settings):
    settings.DEFAULT_CHANNEL = "sandbox"
    contact = ContactFactory(channel="twilio")

    assert outbound_text_create(contact=contact, text="a").channel == "twilio"
    assert outbound_text_create(contact=contact, text="b", channel="meta").channel == "meta"
    contact.channel = ""
    assert outbound_text_create(contact=contact, text="c").channel == "sandbox"


def test_free_form_text_outside_the_window_names_the_template(settings):
    contact = ContactFactory(last_inbound_at=timezone.now() - timedelta(hours=24, seconds=1))

    with pytest.raises(WindowClosedError) as caught:
        outbound_text_create(contact=contact, text="Hola")
    with pytest.raises(WindowClosedError):
        outbound_media_create(contact=contact, media_url="https://example.com/a.jpg", kind="image")

    assert caught.value.extra["template"] == settings.FALLBACK_TEMPLATE_NAME
    assert not Message.objects.exists()


def test_a_contact_who_never_wrote_gets_no_free_form_text():
    with pytest.raises(WindowClosedError):
        outbound_text_create(contact=ContactFactory(last_inbound_at=None), text="Hola")


def test_templates_may_go_outside_the_window(demo_templates):
    contact = ContactFactory(last_inbound_at=None, profile_name="Ana")

    message = outbound_template_create(
        contact=contact, template=demo_templates.request_received, values={"nombre": "Ana"}
    )

    assert (message.kind, message.template_name, message.template_parameters) == (
        "template",
        "vea_request_received",
        [["nombre", "Ana"]],
    )
    assert message.text == "Hola Ana, recibimos tu mensaje."


def test_template_values_are_validated_before_anything_is_queued(demo_templates):
    contact = ContactFactory()

    with pytest.raises(TemplateValidationError) as caught:
        outbound_template_create(
            contact=contact, template=demo_templates.event_info, values={"nombre": "Ana\nMaría", "tema": ""}
        )

    assert caught.value.errors == ["Parameter 'nombre' contains a newline.", "Parameter 'tema' is empty."]
    assert not Message.objects.exists()


def test_marketing_templates_are_refused_to_opted_out_contacts(demo_templates):
    stopped = ContactFactory(opted_out_at=timezone.now())
    marketing_stopped = ContactFactory(marketing_opted_out_at=timezone.now())

    for contact in (stopped, marketing_stopped):
        with pytest.raises(OptedOutError):
            outbound_template_create(contact=contact, template=demo_templates.donations, values={})
    # Utility templates still go (e.g. a one-time code the contact asked for).
    assert outbound_template_create(
        contact=marketing_stopped, template=demo_templates.request_received, values={"nombre": "Ana"}
    )


def test_no_free_form_text_to_an_opted_out_contact():
    with pytest.raises(OptedOutError):
        outbound_text_create(contact=ContactFactory(opted_out_at=timezone.now()), text="Hola")


def test_media_messages_are_queued_with_their_url():
    message = outbound_media_create(
        contact=ContactFactory(), media_url="https://example.com/menu.pdf", kind="document", file_name="menu.pdf"
    )

    assert (message.kind, message.media) == (
        "document",
        {"url": "https://example.com/menu.pdf", "file_name": "menu.pdf", "caption": ""},
    )


# --- statuses ---------------------------------------------------------------------------------------------


def test_a_receipt_that_arrives_before_the_provider_id_is_applied_when_it_is_recorded():
    status_record(
        event=StatusEvent(
            channel="acs", provider_message_id="early-1", status=DeliveryStatus.DELIVERED, occurred_at=timezone.now()
        )
    )
    message = OutboundMessageFactory(channel="acs", status=MessageStatus.SENT, provider_message_id="early-1")

    assert status_updates_replay(message=message) == 1

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert StatusUpdate.objects.get().message_id == message.pk


def test_a_marketing_opt_out_code_marks_the_contact():
    message = OutboundMessageFactory(channel="acs", status=MessageStatus.SENT, provider_message_id="m-1")

    status_record(
        event=StatusEvent(
            channel="acs",
            provider_message_id="m-1",
            status=DeliveryStatus.FAILED,
            occurred_at=timezone.now(),
            error_code="131050",
            error_message="User stopped marketing messages",
        )
    )

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert Contact.objects.get(pk=message.contact_id).marketing_opted_out_at is not None


def test_a_duplicate_status_event_is_stored_once():
    event = StatusEvent(channel="acs", provider_message_id="x", status=DeliveryStatus.SENT, occurred_at=timezone.now())

    status_record(event=event)
    status_record(event=event)

    assert StatusUpdate.objects.count() == 1


# --- delivery after a crash, sweeper, purge ------------------------------------------------------------------


def test_a_send_abandoned_by_a_crashed_worker_is_resent_on_an_idempotent_channel(sandbox):
    message = OutboundMessageFactory(channel="sandbox", status=MessageStatus.SENDING, attempts=1)

    outbound_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.READ
    assert message.attempts == 2


def test_a_send_abandoned_on_a_non_idempotent_channel_is_marked_unknown_not_resent(settings):
    message = OutboundMessageFactory(channel="twilio", status=MessageStatus.SENDING, attempts=1)

    outbound_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.UNKNOWN
    assert message.error_code == "abandoned"
    assert message.provider_message_id is None


def test_the_sweeper_reenqueues_only_stale_rows_one_task_per_contact(broker):
    contact = ContactFactory()
    old = timezone.now() - timedelta(minutes=5)
    for _ in range(2):
        InboundMessageFactory(contact=contact)
    OutboundMessageFactory(contact=contact, status=MessageStatus.SENDING)
    OutboundMessageFactory(status=MessageStatus.SENT)
    Message.objects.update(updated_at=old)
    InboundMessageFactory()  # fresh: not stale yet

    report = sweeper_run(older_than_seconds=60)

    assert (report.inbound, report.outbound, report.failed_enqueues) == (1, 1, 0)
    assert broker.do_qsize("default") == 1
    assert broker.do_qsize("outbound") == 1


def test_the_sweep_command_runs_the_sweeper(broker, capsys):
    InboundMessageFactory()
    Message.objects.update(updated_at=timezone.now() - timedelta(minutes=5))

    call_command("sweep", "--older-than", "60")

    assert capsys.readouterr().out.strip() == (
        "re-enqueued 1 inbound and 0 outbound (0 enqueue failures); gave up 0 AI answers"
    )


def test_raw_payloads_past_retention_are_purged():
    old = InboundMessageFactory(raw_payload={"secret": "old"})
    recent = InboundMessageFactory(raw_payload={"keep": "me"})
    WebhookLogFactory(body="[old]")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    WebhookLog.objects.update(created_at=timezone.now() - timedelta(days=31))

    report = payloads_purge(older_than_days=30)

    assert (report.messages, report.webhook_logs) == (1, 1)
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.raw_payload, recent.raw_payload) == ({}, {"keep": "me"})
    assert WebhookLog.objects.get().body == ""


def test_the_purge_command_reports_what_it_cleared(capsys):
    call_command("purge_payloads", "--days", "30")

    assert "cleared 0 message payloads" in capsys.readouterr().out


def test_an_empty_text_or_an_unknown_media_kind_is_refused_with_a_clear_code():
    contact = ContactFactory()

    with pytest.raises(ApplicationError) as empty:
        outbound_text_create(contact=contact, text="   ")
    with pytest.raises(ApplicationError) as kind:
        outbound_media_create(contact=contact, media_url="https://example.com/x", kind="sticker")

    assert (empty.value.code, kind.value.code) == ("EMPTY_TEXT", "UNSUPPORTED_MEDIA_KIND")
    assert not Message.objects.exists()
