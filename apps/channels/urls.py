"""Sandbox pages (the sandbox channel's own UI). Webhooks live in apps.interactions.urls."""

from __future__ import annotations

from django.urls import path

# The sandbox chat API is the pipeline's (apps.interactions): the sandbox channel has no models of its own.
from apps.interactions.apis import sandbox_messages

from .sandbox_views import sandbox_page

urlpatterns: list = [
    path("sandbox/", sandbox_page, name="sandbox"),
    path("sandbox/api/messages/", sandbox_messages, name="sandbox-messages"),
]
