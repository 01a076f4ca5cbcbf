"""Send-side pacing through the shared cache (Redis test db): per sender number and per recipient."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from apps.channels.throttle import send_throttle_wait


def _within_one_window(run, window_seconds: int = 1, attempts: int = 5):
    """Run `run()` so that it starts and ends in the same fixed window (retried on a boundary crossing)."""
    for _ in range(attempts):
        cache.clear()
        start = int(time.time() // window_seconds)
        result = run()
        if int(time.time() // window_seconds) == start:
            return result
    pytest.fail("could not run within one throttle window")


def test_sender_may_send_up_to_its_per_second_limit(settings):
    settings.META_SEND_RATE_PER_SECOND = 3
    settings.SEND_RECIPIENT_MAX_PER_MINUTE = 100

    def run():
        return [send_throttle_wait(channel="meta", sender="pn1", recipient=f"+2547000000{i:02d}") for i in range(4)]

    waits = _within_one_window(run)
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0 < waits[3] <= 1.0


def test_other_sender_numbers_have_their_own_budget(settings):
    settings.META_SEND_RATE_PER_SECOND = 1

    def run():
        return (
            send_throttle_wait(channel="meta", sender="pn1", recipient="+254700000001"),
            send_throttle_wait(channel="meta", sender="pn1", recipient="+254700000002"),
            send_throttle_wait(channel="meta", sender="pn2", recipient="+254700000001"),
        )

    first, same_sender, other_sender = _within_one_window(run)
    assert (first, other_sender) == (0.0, 0.0)
    assert same_sender > 0


def test_one_recipient_gets_a_burst_then_waits_for_the_minute(settings):
    settings.SEND_RECIPIENT_MAX_PER_MINUTE = 3

    def run():
        return [send_throttle_wait(channel="twilio", sender="num", recipient="+254700000001") for _ in range(4)] + [
            send_throttle_wait(channel="twilio", sender="num", recipient="+254700000002")
        ]

    waits = _within_one_window(run, window_seconds=60)
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0 < waits[3] <= 60
    assert waits[4] == 0.0  # another recipient is not held back


def test_a_refused_send_does_not_use_up_the_sender_budget(settings):
    settings.META_SEND_RATE_PER_SECOND = 3
    settings.SEND_RECIPIENT_MAX_PER_MINUTE = 1

    def run():
        return [
            send_throttle_wait(channel="meta", sender="pn", recipient=recipient)
            for recipient in ("+1", "+1", "+1", "+2", "+3", "+4")
        ]

    waits = _within_one_window(run)
    # +1 is held back twice by its own pair limit; those attempts cost the number nothing, so +2 and +3 still
    # fit in the three-per-second budget and only +4 waits.
    assert [w == 0.0 for w in waits] == [True, False, False, True, True, False]


def test_sandbox_is_not_paced_per_recipient(settings):
    settings.SEND_RECIPIENT_MAX_PER_MINUTE = 1

    def run():
        return [send_throttle_wait(channel="sandbox", sender="local", recipient="+254700000001") for _ in range(5)]

    assert _within_one_window(run) == [0.0] * 5


def test_the_budget_is_shared_through_the_cache(settings):
    """Two workers see the same counter: what one took, the other cannot take."""
    settings.SEND_RECIPIENT_MAX_PER_MINUTE = 1

    def run():
        first = send_throttle_wait(channel="acs", sender="ch", recipient="+254700000001")
        keys = cache.keys("throttle:rcpt:*") if hasattr(cache, "keys") else []
        second = send_throttle_wait(channel="acs", sender="ch", recipient="+254700000001")
        return first, keys, second

    first, keys, second = _within_one_window(run, window_seconds=60)
    assert first == 0.0 and second > 0
    assert keys, "the recipient counter lives in the shared cache"
