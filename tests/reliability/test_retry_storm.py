"""Retry storm: every inbound message delivered three times at once, over real HTTP, on all three channels.

gunicorn (config.wsgi) and a `rundramatiq` worker run as separate processes against the test database; the
provider emulators run in this process. RELAY_STORM_MESSAGES (default 1,000, the issue's figure) sets the size.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from apps.interactions.models import Direction, Interaction, Message
from tests.reliability.deliveries import CHANNELS, delivery, replies
from tests.support import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MESSAGES = int(os.environ.get("RELAY_STORM_MESSAGES", "1000"))
COPIES = 3


def test_a_thousand_messages_each_delivered_three_times_at_once_are_answered_exactly_once(
    stack, acs_emulator, twilio_emulator, meta_emulator
):
    _, base_url = stack.gunicorn(workers=2, threads=8)
    stack.worker(processes=1, threads=8)
    deliveries = [delivery(CHANNELS[i % 3], i, base_url=base_url) for i in range(MESSAGES)]
    # Every copy of every message, interleaved so that the three copies of one message race each other.
    attempts = [d for d in deliveries for _ in range(COPIES)]

    def post(d):
        with httpx.Client(base_url=base_url, timeout=30) as client:
            return client.post(d.path, content=d.body, headers=d.headers).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = Counter(pool.map(post, attempts))
    ingest_seconds = time.monotonic() - started
    assert statuses == {200: MESSAGES * COPIES}, statuses

    emulators = {"acs": acs_emulator, "twilio": twilio_emulator, "meta": meta_emulator}
    expected = {ch: sorted(d.sender for d in deliveries if d.channel == ch) for ch in CHANNELS}

    def all_answered():
        return all(len(replies(ch, emulators[ch])) >= len(expected[ch]) for ch in CHANNELS)

    wait_until(all_answered, timeout=240, interval=0.5, what="every message answered")
    # Late duplicates would arrive within the sweeper's interval; give them the chance to show up.
    time.sleep(3)
    print(f"storm: {MESSAGES * COPIES} posts in {ingest_seconds:.1f}s, answered in {time.monotonic() - started:.1f}s")

    for channel in CHANNELS:
        assert sorted(replies(channel, emulators[channel])) == expected[channel], channel
    assert Message.objects.filter(direction=Direction.INBOUND).count() == MESSAGES
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == MESSAGES
    assert Interaction.objects.count() == MESSAGES
    assert Counter(Interaction.objects.values_list("route", flat=True)) == {"template": MESSAGES}
