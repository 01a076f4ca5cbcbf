"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

from apps.core.telemetry import telemetry_configure

telemetry_configure(role="web")
application = get_asgi_application()
