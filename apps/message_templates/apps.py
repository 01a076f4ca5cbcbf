from __future__ import annotations

from django.apps import AppConfig


class MessageTemplatesConfig(AppConfig):
    name = "apps.message_templates"
    label = "message_templates"
    verbose_name = "Templates and intents"
