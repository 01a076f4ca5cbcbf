"""Fail closed: with DEBUG off, an enabled channel without its secret stops the process at startup."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Channel name → (enabled setting, settings it cannot run without).
REQUIRED_CHANNEL_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "acs": ("ACS_ENABLED", ("ACS_CHANNEL_REGISTRATION_ID", "ACS_EVENTGRID_SECRET")),
    "twilio": ("TWILIO_ENABLED", ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_NUMBER")),
    "meta": ("META_ENABLED", ("META_ACCESS_TOKEN", "META_PHONE_NUMBER_ID", "META_APP_SECRET", "META_VERIFY_TOKEN")),
}


def startup_problems() -> list[str]:
    """Every reason this configuration must not serve traffic in production."""
    problems: list[str] = []
    if settings.SKIP_WEBHOOK_SIGNATURE_VERIFICATION and not settings.DEBUG:
        problems.append("SKIP_WEBHOOK_SIGNATURE_VERIFICATION is refused unless DJANGO_DEBUG is on")
    if settings.DEBUG:
        return problems
    for channel, (enabled_setting, required) in REQUIRED_CHANNEL_SETTINGS.items():
        if not getattr(settings, enabled_setting):
            continue
        missing = [name for name in required if not getattr(settings, name)]
        if channel == "acs" and not (settings.ACS_CONNECTION_STRING or settings.ACS_ENDPOINT):
            missing.insert(0, "ACS_CONNECTION_STRING or ACS_ENDPOINT")
        if missing:
            problems.append(f"channel {channel} is enabled but {', '.join(missing)} is not set")
    if not settings.FIELD_ENCRYPTION_KEY:
        problems.append("FIELD_ENCRYPTION_KEY is required when DJANGO_DEBUG is off")
    return problems


def startup_validate() -> None:
    problems = startup_problems()
    if problems:
        raise ImproperlyConfigured("Relay refuses to start: " + "; ".join(problems))
