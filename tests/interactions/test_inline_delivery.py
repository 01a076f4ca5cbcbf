"""Replies queued inside the worker's inbound and AI actors are delivered by the same thread after commit;
what has to wait goes to the outbound actor through the real broker, as before."""

from __future__ import annotations

import time

import dramatiq
import pytest
from django.db import transaction

from apps.interactions.models import MessageStatus
from apps.interactions.services import outbound_text_create
from apps.interactions.services.enqueue import deliveries_inline

from .factories import ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)


def waiting(broker, queue: str) -> list[tuple]:
    """Arguments of the messages on `queue` and its delay queue in the real Redis broker."""
    return [
        dramatiq.Message.decode(data).args
        for name in (queue, dramatiq.common.dq_name(queue))
        for data in broker.client.hvals(f"{broker.namespace}:{name}.msgs")
    ]


def test_inside_the_actors_a_reply_is_sent_after_commit_without_the_broker(acs_emulator, broker):
    contact = ContactFactory(channel="acs")
    with deliveries_inline(), transaction.atomic():
        reply = outbound_text_create(contact=contact, text="Hola")
        assert acs_emulator.deliveries == []  # nothing leaves before the commit

    reply.refresh_from_db()
    assert reply.status == MessageStatus.SENT
    assert [d.to for d in acs_emulator.deliveries] == [contact.phone]
    assert waiting(broker, "outbound") == []


def test_outside_the_actors_replies_go_through_the_outbound_queue(acs_emulator, broker):
    reply = outbound_text_create(contact=ContactFactory(channel="acs"), text="Hola")

    assert acs_emulator.deliveries == []
    assert waiting(broker, "outbound") == [(reply.pk,)]


def test_a_reply_that_must_wait_is_handed_to_the_outbound_actor_with_its_delay(acs_emulator, broker, settings):
    settings.SEND_RECIPIENT_MAX_PER_MINUTE = 1
    # The recipient limit counts per clock minute, and a wait under a second is slept, not queued: in a minute's
    # last seconds the second reply would legitimately go out in the next minute. Start clear of the boundary.
    while time.time() % 60 > 55:
        time.sleep(0.05)
    contact = ContactFactory(channel="acs")
    with deliveries_inline():
        first = outbound_text_create(contact=contact, text="Uno")
        second = outbound_text_create(contact=contact, text="Dos")

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (MessageStatus.SENT, MessageStatus.QUEUED)
    assert len(acs_emulator.deliveries) == 1
    assert waiting(broker, "outbound") == [(second.pk,)]


def test_a_redelivered_inbound_task_finishes_the_replies_its_killed_worker_left(acs_emulator, broker):
    """The worker died after the decision committed, mid-send: the broker redelivers the inbound task."""
    from apps.interactions.services import inbound_process

    from .factories import InboundMessageFactory, OutboundMessageFactory

    inbound = InboundMessageFactory(channel="acs", contact__channel="acs", status=MessageStatus.PROCESSED)
    cut = OutboundMessageFactory(contact=inbound.contact, in_reply_to=inbound, status=MessageStatus.SENDING)
    with deliveries_inline():
        inbound_process(message_id=inbound.pk)

    cut.refresh_from_db()
    assert cut.status == MessageStatus.SENT  # ACS is idempotent: resent under the same repeatability id
    assert [d.repeatability_request_id for d in acs_emulator.deliveries] == [cut.idempotency_key]


@pytest.mark.parametrize("channel", ["acs", "twilio"])
def test_an_inline_reply_whose_row_moved_before_its_send_is_decided_on_a_fresh_read(
    channel, acs_emulator, twilio_emulator, broker
):
    """Inline delivery starts from the row as its creator holds it; when another worker took the row in
    between (and died mid-send), the claim on that snapshot fails and the row is read afresh: ACS resends under
    the same repeatability id, Twilio (not idempotent) marks it unknown instead of sending it twice."""
    from apps.interactions.models import Message

    contact = ContactFactory(channel=channel)
    with deliveries_inline(), transaction.atomic():
        reply = outbound_text_create(contact=contact, text="Hola")
        Message.objects.filter(pk=reply.pk).update(status=MessageStatus.SENDING, attempts=1)

    reply.refresh_from_db()
    if channel == "acs":
        assert reply.status == MessageStatus.SENT
        assert [d.repeatability_request_id for d in acs_emulator.deliveries] == [reply.idempotency_key]
    else:
        assert (reply.status, reply.error_code) == (MessageStatus.UNKNOWN, "abandoned")
        assert twilio_emulator.sent == []
    assert reply.attempts == 2
