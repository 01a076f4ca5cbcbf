"""Sandbox pages (the sandbox channel's own UI). Webhooks live in apps.interactions.urls."""

from __future__ import annotations

urlpatterns: list = []
