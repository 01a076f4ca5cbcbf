"""Conversation context: the last MAX_CONVERSATION_HISTORY turns per contact, in the cache.

Redis in production, local memory on `make run`. Every append renews the SESSION_TIMEOUT_MINUTES expiry, so a
conversation that pauses longer than that starts afresh.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

from apps.core.locks import advisory_lock

ROLES = ("user", "assistant")


def _key(contact_key: str) -> str:
    # Hashed: cache keys end up in Redis MONITOR output and key listings; phone numbers should not.
    return "assistant:conversation:" + hashlib.sha256(contact_key.encode()).hexdigest()[:32]


def _timeout_seconds() -> float:
    return max(float(settings.SESSION_TIMEOUT_MINUTES) * 60, 0.05)


def conversation_history(*, contact_key: str) -> list[dict[str, str]]:
    """The stored turns, oldest first, as chat messages ({"role", "content"}); [] when expired or new."""
    if not contact_key:
        return []
    turns = cache.get(_key(contact_key)) or []
    return [t for t in turns if isinstance(t, dict) and t.get("role") in ROLES and isinstance(t.get("content"), str)]


def conversation_append(*, contact_key: str, turns: list[tuple[str, str]]) -> None:
    """Add (role, content) turns, keep the last MAX_CONVERSATION_HISTORY and renew the expiry."""
    if not contact_key:
        return
    # Two answers for one contact may finish at once (ai_answer runs on several workers): read-modify-write
    # under a lock so neither turn is lost.
    with advisory_lock("assistant-conversation", contact_key):
        history = conversation_history(contact_key=contact_key)
        history.extend({"role": r, "content": c} for r, c in turns if r in ROLES and c)
        limit = max(int(settings.MAX_CONVERSATION_HISTORY), 0)
        history = history[-limit:] if limit else []
        cache.set(_key(contact_key), history, timeout=_timeout_seconds())


def conversation_reset(*, contact_key: str) -> None:
    cache.delete(_key(contact_key))
