"""Channel lookup by name. Adapters are imported lazily so a deployment loads only what it uses."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from .base import Channel

CHANNEL_CLASSES = {
    "acs": "apps.channels.acs.AcsChannel",
    "twilio": "apps.channels.twilio.TwilioChannel",
    "meta": "apps.channels.meta.MetaChannel",
    "sandbox": "apps.channels.sandbox.SandboxChannel",
}


@cache
def channel_get(name: str) -> Channel:
    """The adapter for `name`. Raises KeyError for an unknown channel."""
    module_name, class_name = CHANNEL_CLASSES[name].rsplit(".", 1)
    return getattr(import_module(module_name), class_name)()


def channels_enabled() -> list[str]:
    return [name for name in CHANNEL_CLASSES if channel_get(name).enabled()]


def channel_cache_clear() -> None:
    """Forget built adapters (tests change settings between cases)."""
    channel_get.cache_clear()
