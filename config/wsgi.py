"""WSGI entry point (gunicorn config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

from apps.core.telemetry import telemetry_configure

telemetry_configure(role="web")
application = get_wsgi_application()
