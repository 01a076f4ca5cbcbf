"""Shared fixtures: the real Dramatiq broker and worker, a clean cache, and the provider emulators."""

from __future__ import annotations

import dramatiq
import pytest
from django.core.cache import cache

from apps.channels.registry import channel_cache_clear

# Provider emulator fixtures (one module per provider).
pytest_plugins = [
    "tests.emulators.acs",
    "tests.emulators.twilio",
    "tests.emulators.meta",
    "tests.emulators.openai",
]


@pytest.fixture(autouse=True)
def _clean_state():
    """Each test starts with an empty cache (Redis test db) and freshly built channel adapters."""
    cache.clear()
    channel_cache_clear()
    yield
    channel_cache_clear()


@pytest.fixture
def broker():
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def worker(broker):
    """A real Dramatiq worker on the configured broker (RedisBroker in tests), in this process."""
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()
