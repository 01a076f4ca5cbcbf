"""Python data sources: functions registered by name with `@resolver("name")`.

A resolver takes the message context (`contact_phone`, `contact_name`, `contact_bsuid`, `entity`,
`entity_normalized`, `text`, `channel`, `message_id`, `language`; all strings) and returns one row as a dict
of column → value, or None when it has nothing. A `DataSource` of kind "python" names the resolver.
Other apps register theirs in their `AppConfig.ready()` by importing the module that holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Resolver = Callable[..., dict[str, Any] | None]
_RESOLVERS: dict[str, Resolver] = {}


def resolver(name: str) -> Callable[[Resolver], Resolver]:
    """Register the decorated function as the resolver `name` (a later registration replaces it)."""

    def register(fn: Resolver) -> Resolver:
        _RESOLVERS[name] = fn
        return fn

    return register


def resolver_get(name: str) -> Resolver | None:
    return _RESOLVERS.get(name)


def resolver_names() -> list[str]:
    return sorted(_RESOLVERS)


@resolver("contact")
def contact(*, context: dict[str, str]) -> dict[str, Any] | None:
    """The contact's own fields, e.g. to greet them by name."""
    # Profile names are user input: collapse whitespace so a stray newline does not void the reply.
    return {
        "contact_name": " ".join(context.get("contact_name", "").split()),
        "contact_phone": context.get("contact_phone", ""),
        "entity": context.get("entity", ""),
    }


@resolver("demo_ministry")
def demo_ministry(*, context: dict[str, str]) -> dict[str, Any] | None:
    """Demo data: the ministry the message names (most words in common), else the first by position."""
    from .matching import STOP_WORDS
    from .models import DemoMinistry

    ministries = list(DemoMinistry.objects.order_by("position", "name"))
    if not ministries:
        return None
    wanted = set(context.get("entity_normalized", "").split()) - STOP_WORDS - {"ministerio"}
    scored = [(len(wanted & set(m.search_text.split())), -i, m) for i, m in enumerate(ministries)]
    best = max(scored, key=lambda s: (s[0], s[1]))
    chosen = best[2] if best[0] else ministries[0]
    return {
        "ministry_name": chosen.name,
        "leader_name": chosen.leader,
        "ministry_phone": chosen.phone,
        "ministry_email": chosen.email,
    }
