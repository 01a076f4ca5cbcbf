"""A real `rundramatiq` killed with SIGKILL in the middle of a batch, then restarted.

ACS sends are idempotent (Repeatability-Request-ID): whatever was in flight is resent with the same id and the
emulator — like ACS — delivers it once. Twilio and Meta sends are not: a send cut by the kill is marked
`unknown` and never resent, so no recipient ever gets a reply twice.
"""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from apps.interactions.models import Direction, Message, MessageStatus
from tests.reliability.conftest import killed_clients_settled
from tests.reliability.deliveries import delivery, replies
from tests.support import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _post_all(base_url: str, deliveries) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for d in deliveries:
            assert client.post(d.path, content=d.body, headers=d.headers).status_code == 200


def _outbound(status: str | None = None):
    rows = Message.objects.filter(direction=Direction.OUTBOUND)
    return rows.filter(status=status) if status else rows


def test_acs_messages_are_answered_exactly_once_across_a_worker_killed_mid_batch(stack, acs_emulator):
    _, base_url = stack.gunicorn()
    # Slow sends: the kill lands while requests are in flight (ACS has them, Relay does not know yet).
    acs_emulator.delay = 0.4
    deliveries = [delivery("acs", i, base_url=base_url) for i in range(40)]
    first = stack.worker(threads=4)
    _post_all(base_url, deliveries)

    wait_until(lambda: len(acs_emulator.deliveries) >= 8, timeout=60, what="some replies delivered")
    # Sends the emulator has received but not answered when the kill lands: it processes them afterwards.
    acs_emulator.hold()
    wait_until(lambda: acs_emulator.held >= 1, timeout=30, what="a send in flight")
    held_at_kill = acs_emulator.held
    first.kill()
    first.popen.wait(timeout=10)
    acs_emulator.release()
    killed_clients_settled()
    in_flight_at_kill = _outbound(MessageStatus.SENDING).count()
    stack.worker(threads=4)

    expected = sorted(d.sender for d in deliveries)
    wait_until(lambda: len(set(replies("acs", acs_emulator))) == len(expected), timeout=180, what="all answered")
    # ACS may have a cut send before Relay recorded it: the row stays "sending" until the sweeper (or the
    # redelivered inbound task) resends it under the same Repeatability-Request-ID and records it.
    wait_until(
        lambda: not _outbound(MessageStatus.SENDING).exists() and not _outbound(MessageStatus.QUEUED).exists(),
        timeout=60,
        what="every reply recorded",
    )
    time.sleep(3)  # a double delivery would show up within the sweeper's interval

    assert in_flight_at_kill >= held_at_kill >= 1
    assert sorted(replies("acs", acs_emulator)) == expected
    assert Counter(replies("acs", acs_emulator)).most_common(1)[0][1] == 1
    # Repeatability ids are the rows' idempotency keys: one id per reply, never two deliveries for one id.
    ids = [d.repeatability_request_id for d in acs_emulator.deliveries]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == set(_outbound().values_list("idempotency_key", flat=True))
    assert _outbound().count() == len(expected)
    assert set(_outbound().values_list("status", flat=True)) <= {"sent", "delivered"}


def test_twilio_and_meta_sends_cut_by_a_worker_kill_are_marked_unknown_and_never_resent(
    stack, twilio_emulator, meta_emulator
):
    _, base_url = stack.gunicorn()
    deliveries = [delivery(("twilio", "meta")[i % 2], i, base_url=base_url) for i in range(16)]
    # The providers receive the first sends but do not answer them before the kill; they process them after it.
    twilio_emulator.hold()
    meta_emulator.hold()
    first = stack.worker(threads=4)
    _post_all(base_url, deliveries)

    def held() -> int:
        return twilio_emulator.held + meta_emulator.held

    wait_until(lambda: held() >= 2, timeout=60, what="sends in flight")
    held_at_kill = held()
    first.kill()
    first.popen.wait(timeout=10)
    twilio_emulator.release()
    meta_emulator.release()
    killed_clients_settled()
    cut = set(_outbound(MessageStatus.SENDING).values_list("pk", flat=True))
    stack.worker(threads=4)

    def settled():
        inbound_done = not Message.objects.filter(direction=Direction.INBOUND, status="received").exists()
        pending = _outbound().filter(status__in=["queued", "sending"]).exists()
        return inbound_done and _outbound().count() == len(deliveries) and not pending

    wait_until(settled, timeout=180, interval=0.5, what="every reply sent or settled")
    time.sleep(3)

    assert len(cut) >= held_at_kill >= 2, "the kill did not land mid-send"
    statuses = dict(_outbound().values_list("pk", "status"))
    assert {statuses[pk] for pk in cut} == {MessageStatus.UNKNOWN}
    assert {s for pk, s in statuses.items() if pk not in cut} == {MessageStatus.SENT}
    cut_recipients = set(Message.objects.filter(pk__in=cut).values_list("contact__phone", flat=True))
    for channel, emulator in (("twilio", twilio_emulator), ("meta", meta_emulator)):
        counts = Counter(replies(channel, emulator))
        senders = {d.sender for d in deliveries if d.channel == channel}
        # Nobody got two replies; whoever got none is one of the cut sends (it may or may not have left).
        assert counts and max(counts.values()) == 1, (channel, counts)
        assert senders - set(counts) <= cut_recipients, channel
