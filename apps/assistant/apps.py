from __future__ import annotations

from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "apps.assistant"
    label = "assistant"
    verbose_name = "AI assistant and knowledge"

    def ready(self) -> None:
        from . import seed  # noqa: F401  (registers the demo knowledge with seed_demo)
