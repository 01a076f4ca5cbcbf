"""A registry of demo-data seed functions, run in order by `manage.py seed_demo`.

An app adds its demo data by registering an idempotent function (running it twice leaves the same rows),
usually in a `seed.py` imported from its `AppConfig.ready()`:

    from apps.core.seeding import seed_register

    @seed_register(order=200)
    def bookings_demo_seed() -> str:
        ...
        return "3 activities, 42 slots"   # a short summary printed by seed_demo

Seeds run by ascending `order`, then in registration order. Templates and intents use order 100; seeds that
need them (knowledge referring to templates, flows) use a larger number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Seed = Callable[[], object]


@dataclass(frozen=True)
class _Registered:
    order: int
    sequence: int
    name: str
    fn: Seed


_SEEDS: dict[str, _Registered] = {}


def seed_register(fn: Seed | None = None, *, order: int = 100, name: str = ""):
    """Register `fn` (usable as `@seed_register` or `@seed_register(order=…)`). Registering the same name
    again replaces the earlier function, so re-imports do not run a seed twice."""

    def register(f: Seed) -> Seed:
        key = name or f"{f.__module__}.{f.__qualname__}"
        previous = _SEEDS.get(key)
        sequence = previous.sequence if previous else len(_SEEDS)
        _SEEDS[key] = _Registered(order=order, sequence=sequence, name=key, fn=f)
        return f

    return register(fn) if fn is not None else register


def seeds() -> list[tuple[str, Seed]]:
    """The registered seeds as (name, function), in the order seed_demo runs them."""
    return [(s.name, s.fn) for s in sorted(_SEEDS.values(), key=lambda s: (s.order, s.sequence))]


def seed_all(*, only: list[str] | None = None) -> list[tuple[str, object]]:
    """Run every registered seed (or those whose name contains one of `only`); returns (name, summary)."""
    results = []
    for name, fn in seeds():
        if only and not any(part in name for part in only):
            continue
        results.append((name, fn()))
    return results
