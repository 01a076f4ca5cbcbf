"""Redis (broker and cache) stopped for RELAY_REDIS_OUTAGE_SECONDS (default 30, the issue's figure).

A private redis-server on its own port serves gunicorn and the worker; the shared one is never touched. While
it is down the webhooks still answer 2xx — the row is committed first, the failed enqueue is logged — and when
it returns the sweeper re-enqueues what was left, and each message is answered once.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

from apps.interactions.models import Direction, InboundDelivery, Message
from tests.reliability.deliveries import CHANNELS, delivery, replies
from tests.support import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

OUTAGE_SECONDS = float(os.environ.get("RELAY_REDIS_OUTAGE_SECONDS", "30"))


def test_webhooks_answer_2xx_while_redis_is_down_and_the_backlog_is_answered_once_it_returns(
    stack, acs_emulator, twilio_emulator, meta_emulator
):
    redis = stack.redis()
    _, base_url = stack.gunicorn(REDIS_URL=redis.url)
    stack.worker(threads=4, REDIS_URL=redis.url)
    emulators = {"acs": acs_emulator, "twilio": twilio_emulator, "meta": meta_emulator}
    before = [delivery(ch, i, base_url=base_url) for i, ch in enumerate(CHANNELS)]
    during = [delivery(CHANNELS[i % 3], 100 + i, base_url=base_url) for i in range(30)]

    with httpx.Client(base_url=base_url, timeout=30) as client:
        for d in before:
            assert client.post(d.path, content=d.body, headers=d.headers).status_code == 200
        wait_until(
            lambda: all(replies(ch, emulators[ch]) for ch in CHANNELS), timeout=60, what="answers before the outage"
        )

        redis.stop()
        outage_started = time.monotonic()
        statuses = []
        for i, d in enumerate(during):
            # Spread over the outage, so messages arrive early, in the middle and late in it.
            time.sleep(max(0.0, outage_started + i * OUTAGE_SECONDS / len(during) - time.monotonic()))
            statuses.append(client.post(d.path, content=d.body, headers=d.headers).status_code)
        time.sleep(max(0.0, outage_started + OUTAGE_SECONDS - time.monotonic()))
        # Persisted: stored as a message, or waiting for the worker as a deferred webhook delivery.
        persisted_during_outage = (
            Message.objects.filter(direction=Direction.INBOUND).count() + InboundDelivery.objects.count()
        )
        answered_during_outage = sum(len(replies(ch, emulators[ch])) for ch in CHANNELS)
        redis.start()

    assert statuses == [200] * len(during)
    assert persisted_during_outage == len(before) + len(during)
    assert answered_during_outage == len(before)

    expected = {ch: sorted(d.sender for d in before + during if d.channel == ch) for ch in CHANNELS}
    wait_until(
        lambda: all(len(replies(ch, emulators[ch])) >= len(expected[ch]) for ch in CHANNELS),
        timeout=120,
        interval=0.5,
        what="the backlog answered after Redis returned",
    )
    time.sleep(3)
    for channel in CHANNELS:
        assert sorted(replies(channel, emulators[channel])) == expected[channel], channel
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == len(before) + len(during)
