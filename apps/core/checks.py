"""System checks shown by `manage.py check`."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_channels_have_secrets(app_configs, **kwargs):
    from .startup import startup_problems

    return [checks.Error(problem, id="relay.E001") for problem in startup_problems()]


@checks.register(checks.Tags.security, deploy=True)
def check_sandbox_off_in_production(app_configs, **kwargs):
    if settings.SANDBOX_ENABLED and not settings.DEBUG:
        return [
            checks.Warning(
                "SANDBOX_ENABLED is on with DEBUG off: the /sandbox/ chat page is public.",
                id="relay.W001",
            )
        ]
    return []
