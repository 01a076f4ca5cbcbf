from __future__ import annotations

from django.apps import AppConfig


class InteractionsConfig(AppConfig):
    name = "apps.interactions"
    label = "interactions"
    verbose_name = "Conversations"

    def ready(self) -> None:
        from django.conf import settings

        if settings.RELAY_INPROCESS_WORKER:
            from .worker import inprocess_worker_start

            inprocess_worker_start()
