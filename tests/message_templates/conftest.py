"""Fixtures of the templates tests: the demo data exactly as `seed_demo` creates it."""

from __future__ import annotations

import pytest

from apps.message_templates.seed import message_templates_demo_seed
from apps.message_templates.services import intent_index_invalidate


@pytest.fixture
def demo(db):
    """The demo templates, intents, keywords, data sources and demo tables (what `seed_demo` loads)."""
    message_templates_demo_seed()
    intent_index_invalidate()
    yield
    intent_index_invalidate()
