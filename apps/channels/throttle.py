"""Send-side pacing, shared by every worker through the cache (Redis in production).

Keeps under provider limits instead of collecting 429s:

- per sender number: Meta's default throughput is 80 messages/s per business number (Twilio and ACS carry the
  same WhatsApp limit). Settings: `<CHANNEL>_SEND_RATE_PER_SECOND`.
- per recipient pair: Meta documents about one message every 6 s to one user (131056 past it). Pacing every
  reply 6 s apart would stall a conversation (a template and a follow-up, a booking flow's two messages), so
  we allow a burst: `SEND_RECIPIENT_MAX_PER_MINUTE` (default 10) per sender → recipient per minute. Real
  conversations stay far below it; a loop or a broadcast bug hits it and is slowed down instead of getting the
  number's quality rating lowered. A 131056 that still comes back is retried by the pipeline with backoff.

The sandbox channel is local and not paced per recipient.
"""

from __future__ import annotations

import contextlib
import time

from django.conf import settings
from django.core.cache import cache

from apps.core.ratelimit import window_count

DEFAULT_SENDER_LIMITS_PER_SECOND = {"acs": 80, "twilio": 80, "meta": 80, "sandbox": 1000}
DEFAULT_RECIPIENT_MAX_PER_MINUTE = 10
UNPACED_RECIPIENT_CHANNELS = frozenset({"sandbox"})


def _sender_limit(channel: str) -> int:
    default = DEFAULT_SENDER_LIMITS_PER_SECOND.get(channel, 80)
    return int(getattr(settings, f"{channel.upper()}_SEND_RATE_PER_SECOND", default))


def _slot_take(*, key: str, limit: int, window_seconds: int) -> float:
    """Take one slot in the current fixed window; 0.0 when taken, else seconds until the window ends.

    Increment first (atomic in Redis), give the slot back when over the limit, so refused attempts do not
    count against the window and concurrent workers never both get the last slot.
    """
    now = time.time()
    window = int(now // window_seconds)
    cache_key = f"throttle:{key}:{window}"
    count = window_count(key=cache_key, timeout=window_seconds + 1)
    if count <= limit:
        return 0.0
    with contextlib.suppress(ValueError):
        cache.decr(cache_key)
    return max(0.05, (window + 1) * window_seconds - now)


def _slot_release(*, key: str, window_seconds: int) -> None:
    cache_key = f"throttle:{key}:{int(time.time() // window_seconds)}"
    with contextlib.suppress(ValueError):
        cache.decr(cache_key)


def send_throttle_wait(*, channel: str, sender: str, recipient: str) -> float:
    """Seconds to wait before this send may go out; 0.0 when it may go now (and its slots are taken).

    The caller (outbound delivery) retries after that many seconds; nothing is taken when it must wait.
    """
    recipient_key = f"{channel}:{sender}:{recipient}"
    paced_per_recipient = channel not in UNPACED_RECIPIENT_CHANNELS and recipient
    if paced_per_recipient:
        per_minute = int(getattr(settings, "SEND_RECIPIENT_MAX_PER_MINUTE", DEFAULT_RECIPIENT_MAX_PER_MINUTE))
        wait = _slot_take(key=f"rcpt:{recipient_key}", limit=per_minute, window_seconds=60)
        if wait:
            return wait
    wait = _slot_take(key=f"sender:{channel}:{sender}", limit=_sender_limit(channel), window_seconds=1)
    if wait and paced_per_recipient:
        _slot_release(key=f"rcpt:{recipient_key}", window_seconds=60)
    return wait
