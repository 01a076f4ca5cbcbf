from __future__ import annotations

from django.urls import include, path

from .apis import webhook_receive

# Mounted under /api/v1/whatsapp/ (config/urls.py).
urlpatterns = [
    path("webhook/", webhook_receive, {"channel_name": "acs"}, name="webhook-acs"),
    path("webhook/twilio/", webhook_receive, {"channel_name": "twilio"}, name="webhook-twilio"),
    path("webhook/twilio/status/", webhook_receive, {"channel_name": "twilio"}, name="webhook-twilio-status"),
    path("webhook/meta/", webhook_receive, {"channel_name": "meta"}, name="webhook-meta"),
    path("", include("apps.interactions.api.urls")),
]
