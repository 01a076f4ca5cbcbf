"""Send-side pacing, shared by every worker through the cache (Redis in production).

Keeps under provider limits (Meta: 80 messages/s per sender number, about one message every 6 s per
recipient pair) instead of collecting 429s.
"""

from __future__ import annotations

from apps.core.ratelimit import rate_hit

# Channel → (messages per second per sender number).
SENDER_LIMITS_PER_SECOND = {"acs": 80, "twilio": 80, "meta": 80, "sandbox": 1000}


def send_throttle_wait(*, channel: str, sender: str, recipient: str) -> float:
    """Seconds to wait before this send may go out; 0 when it may go now (and the slot is taken)."""
    limit = SENDER_LIMITS_PER_SECOND.get(channel, 80)
    decision = rate_hit(key=f"send:{channel}:{sender}", limit=limit, window_seconds=1)
    if not decision.allowed:
        return float(decision.retry_after)
    return 0.0
