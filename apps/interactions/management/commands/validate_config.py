"""Check the configuration a deployment runs with: settings, database, cache, broker, channels, AI.

One line per check, ✓ / ✗ (⚠ for what works but deserves a look); exit status 1 when anything failed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

OK, FAIL, WARN = "✓", "✗", "⚠"


class CheckFailed(Exception):
    pass


class CheckWarning(Exception):
    pass


def _settings() -> str:
    from apps.core.crypto import fernet
    from apps.core.startup import startup_problems

    problems = list(startup_problems())
    if not settings.DEBUG:
        if len(settings.SECRET_KEY) < 32 or settings.SECRET_KEY.startswith("insecure"):
            problems.append("DJANGO_SECRET_KEY is short or a development key")
        if not settings.ALLOWED_HOSTS:
            problems.append("DJANGO_ALLOWED_HOSTS is empty")
    if settings.FIELD_ENCRYPTION_KEY:
        try:
            fernet()
        except Exception as exc:
            problems.append(f"FIELD_ENCRYPTION_KEY is not a valid key ({type(exc).__name__})")
    if problems:
        raise CheckFailed("; ".join(problems))
    if settings.DEBUG:
        raise CheckWarning("DEBUG is on (development only)")
    return f"DEBUG off, SECRET_KEY set, ALLOWED_HOSTS {', '.join(settings.ALLOWED_HOSTS)}, FIELD_ENCRYPTION_KEY set"


def _database() -> str:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    connection.ensure_connection()
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        raise CheckFailed(f"connected ({connection.vendor}), {len(pending)} unapplied migration(s): {names}")
    return f"connected ({connection.vendor}), migrations applied"


def _cache() -> str:
    from django.core.cache import cache

    cache.set("validate_config:ping", "1", timeout=10)
    if cache.get("validate_config:ping") != "1":
        raise CheckFailed("the cache did not return what was written")
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    if backend == "LocMemCache" and not settings.DEBUG:
        raise CheckWarning(f"{backend}: per-process, rate limits and locks are not shared (set REDIS_URL)")
    return f"{backend} reachable"


def _broker() -> str:
    import dramatiq

    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()
    name = type(broker).__name__
    if name == "StubBroker" and not settings.DEBUG:
        raise CheckWarning(f"{name}: messages stay in this process (set REDIS_URL)")
    return f"{name} reachable"


def _channel(name: str) -> Callable[[], str]:
    def check() -> str:
        from apps.channels.base import ChannelError
        from apps.channels.registry import channel_get

        try:
            return channel_get(name).check_config() or "configured"
        except ChannelError as exc:
            raise CheckFailed(str(exc)) from exc

    return check


def _broken(exc: Exception) -> Callable[[], str]:
    def check() -> str:
        raise CheckFailed(f"{type(exc).__name__}: {exc}")

    return check


def _ai() -> str:
    try:
        from apps.assistant.services import ai_configured
    except ImportError as exc:
        raise CheckWarning("the assistant app is not installed") from exc
    if not ai_configured():
        raise CheckWarning("no provider configured: the fallback answers from retrieval alone")
    return "provider configured"


def checks() -> list[tuple[str, Callable[[], str]]]:
    """(label, check) pairs: a check returns a description, or raises CheckFailed / CheckWarning / any error."""
    from apps.channels.registry import CHANNEL_CLASSES, channel_get

    items: list[tuple[str, Callable[[], str]]] = [
        ("Settings", _settings),
        ("Database", _database),
        ("Cache", _cache),
        ("Broker", _broker),
    ]
    for name in CHANNEL_CLASSES:
        try:
            enabled = channel_get(name).enabled()
        except Exception as exc:  # an adapter that cannot even be built is a failure of its own
            items.append((f"Channel {name}", _broken(exc)))
            continue
        if enabled:
            items.append((f"Channel {name}", _channel(name)))
    items.append(("AI provider", _ai))
    return items


class Command(BaseCommand):
    help = "Validate settings, database and migrations, cache, broker, each enabled channel and the AI provider."

    def handle(self, *args, **options):
        failures = 0
        for label, check in checks():
            try:
                detail = check()
                self.stdout.write(f"{OK} {label}: {detail}")
            except CheckWarning as exc:
                self.stdout.write(f"{WARN} {label}: {exc}")
            except CheckFailed as exc:
                failures += 1
                self.stdout.write(f"{FAIL} {label}: {exc}")
            except Exception as exc:
                failures += 1
                self.stdout.write(f"{FAIL} {label}: {type(exc).__name__}: {exc}"[:500])
        if failures:
            raise CommandError(f"{failures} check(s) failed")
        self.stdout.write(self.style.SUCCESS("Configuration OK"))
