from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token

from apps.interactions.models import InteractionDailyRollup, InteractionHourlyRollup, RollupState
from apps.interactions.statistics.services import hour_floor

from .factories import interactions_generate


@pytest.mark.django_db
def test_create_api_token_prints_a_token_that_authenticates(client):
    out = StringIO()

    call_command("create_api_token", "reporting-bot", "--group", "analysts", "--create-user", stdout=out)

    key = out.getvalue().strip()
    user = User.objects.get(username="reporting-bot")
    assert Token.objects.get(user=user).key == key
    assert list(user.groups.values_list("name", flat=True)) == ["analysts"]
    assert not user.has_usable_password()
    response = client.get("/api/v1/whatsapp/templates/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200


@pytest.mark.django_db
def test_create_api_token_returns_the_same_token_twice(analyst):
    first, second = StringIO(), StringIO()

    call_command("create_api_token", analyst.username, stdout=first)
    call_command("create_api_token", analyst.username, stdout=second)

    assert first.getvalue() == second.getvalue()


@pytest.mark.django_db
def test_create_api_token_refuses_an_unknown_user_without_create_user():
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("create_api_token", "ghost")


@pytest.mark.django_db
def test_the_api_groups_exist_after_migrations():
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {"analysts", "integrators"}


@pytest.mark.django_db
def test_rebuild_rollups_shows_progress_and_is_idempotent():
    now_hour = hour_floor(timezone.now())
    start = now_hour - timedelta(days=3)
    interactions_generate(start=start, hours=48, count=120)
    # From the first day with data through the last complete hour: 4 days, or 3 in the first hour after midnight.
    days = ((now_hour - timedelta(hours=1)).date() - start.date()).days + 1
    out = StringIO()

    call_command("rebuild_rollups", stdout=out)
    first = sorted(InteractionHourlyRollup.objects.values_list("bucket_start", "channel", "route", "interactions"))
    call_command("rebuild_rollups", stdout=StringIO())
    again = sorted(InteractionHourlyRollup.objects.values_list("bucket_start", "channel", "route", "interactions"))

    text = out.getvalue()
    assert f"[{'#' * 30}] {days}/{days} days" in text
    assert f"Rolled up {days} day(s)" in text
    assert first == again
    assert sum(row[3] for row in first) == 120
    daily = InteractionDailyRollup.objects
    fine = sum(daily.exclude(intent="*").values_list("interactions", flat=True))
    coarse = sum(daily.filter(intent="*", template_name="*").values_list("interactions", flat=True))
    assert 0 < fine == coarse <= 120
    assert RollupState.objects.get().refreshed_through == hour_floor(timezone.now())


@pytest.mark.django_db
def test_rebuild_rollups_since_recomputes_only_the_later_hours():
    start = hour_floor(timezone.now()) - timedelta(days=3)
    interactions_generate(start=start, hours=48, count=80)
    call_command("rebuild_rollups", "--no-progress", stdout=StringIO())
    InteractionHourlyRollup.objects.update(interactions=0)

    # The day after the first: always inside the 48 hours of data, whatever the hour the test runs at.
    since = start.replace(hour=0) + timedelta(days=1)
    call_command("rebuild_rollups", "--since", since.date().isoformat(), stdout=StringIO())

    earlier = InteractionHourlyRollup.objects.filter(bucket_start__lt=since)
    later = InteractionHourlyRollup.objects.filter(bucket_start__gte=since)
    assert set(earlier.values_list("interactions", flat=True)) == {0}
    assert later.exists() and 0 not in set(later.values_list("interactions", flat=True))


@pytest.mark.django_db
def test_the_worker_refresh_tick_runs_once_per_interval():
    from apps.interactions.statistics.middleware import rollups_refresh_tick

    interactions_generate(start=hour_floor(timezone.now()) - timedelta(hours=5), hours=4, count=10)

    assert rollups_refresh_tick() is True
    assert rollups_refresh_tick() is False
    assert sum(InteractionHourlyRollup.objects.values_list("interactions", flat=True)) == 10


def test_rebuild_rollups_rejects_a_bad_since():
    with pytest.raises(CommandError, match="not a date"):
        call_command("rebuild_rollups", "--since", "last tuesday")


@pytest.mark.django_db
def test_validate_config_reports_each_check_and_passes_on_the_test_setup():
    out = StringIO()

    call_command("validate_config", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("✓ Settings: DEBUG off")
    assert "✓ Database: connected (postgresql), migrations applied" in lines
    assert "✓ Cache: RedisCache reachable" in lines
    assert "✓ Broker: RedisBroker reachable" in lines
    assert any(line.startswith(("✓ AI provider", "⚠ AI provider")) for line in lines)
    assert lines[-1] == "Configuration OK"


@pytest.mark.django_db
def test_validate_config_makes_an_authenticated_call_to_each_enabled_channel(twilio_emulator):
    out = StringIO()

    call_command("validate_config", stdout=out)

    channel_lines = [line for line in out.getvalue().splitlines() if "Channel" in line]
    assert len(channel_lines) == 1
    assert channel_lines[0].startswith("✓ Channel twilio: Twilio OK: account")
    fetches = [r for r in twilio_emulator.requests if r.method == "GET"]
    assert [r.path for r in fetches] == [f"/2010-04-01/Accounts/{twilio_emulator.account_sid}.json"]


@pytest.mark.django_db
def test_validate_config_fails_when_a_channel_rejects_its_credentials(twilio_emulator, settings):
    settings.TWILIO_AUTH_TOKEN = "not-the-token"
    out = StringIO()

    with pytest.raises(CommandError, match="1 check"):
        call_command("validate_config", stdout=out)

    assert "✗ Channel twilio:" in out.getvalue()


@pytest.mark.django_db
def test_validate_config_fails_when_an_enabled_channel_has_no_secret(twilio_emulator, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    settings.TWILIO_WHATSAPP_NUMBER = ""
    out = StringIO()

    with pytest.raises(CommandError, match="check"):
        call_command("validate_config", stdout=out)

    text = out.getvalue()
    assert "✗ Settings: channel twilio is enabled but TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_NUMBER is not set" in text
    assert "✗ Channel twilio:" in text


@pytest.mark.django_db
def test_validate_config_fails_on_a_broken_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("validate_config", stdout=out)

    assert "✗ Cache: ConnectionError" in out.getvalue()
