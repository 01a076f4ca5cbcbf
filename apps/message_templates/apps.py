from __future__ import annotations

from django.apps import AppConfig


class MessageTemplatesConfig(AppConfig):
    name = "apps.message_templates"
    label = "message_templates"
    verbose_name = "Templates and intents"

    def ready(self) -> None:
        from . import resolvers, seed  # noqa: F401  (register the resolvers and the demo seed)
