"""The settings Relay runs with on App Service, exactly as the Bicep provides them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis
from django.conf import settings

from .bicep import ROOT
from .conftest import production_env

SHOW_SETTINGS = """
import json
from django.conf import settings
from django.db import connection
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "host": db.get("HOST"), "user": db.get("USER"), "password": db.get("PASSWORD"),
    "options": db.get("OPTIONS", {}), "allowed_hosts": settings.ALLOWED_HOSTS,
    "csrf_trusted_origins": settings.CSRF_TRUSTED_ORIGINS, "cache": settings.CACHES["default"]["LOCATION"],
    "broker": settings.DRAMATIQ_BROKER["OPTIONS"]["url"], "debug": settings.DEBUG,
    "log_formatter": settings.LOGGING["handlers"]["console"]["formatter"],
    "static": settings.STORAGES["staticfiles"]["BACKEND"], "proxy_ssl": settings.SECURE_PROXY_SSL_HEADER,
    "dramatiq_middleware": settings.DRAMATIQ_BROKER["MIDDLEWARE"],
}))
"""


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def show_settings(env: dict[str, str]) -> dict:
    import json

    result = run_manage(env, "shell", "-c", SHOW_SETTINGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("service", ["web", "worker"])
def test_check_deploy_passes_with_exactly_the_bicep_app_settings(service):
    env = production_env(service, database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"])
    result = run_manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_a_bicep_secret_the_process_refuses_to_start():
    env = production_env("web", database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"])
    del env["ACS_EVENTGRID_SECRET"]
    result = run_manage(env, "check", "--deploy")
    assert result.returncode != 0
    assert "channel acs is enabled but ACS_EVENTGRID_SECRET is not set" in result.stderr


def test_app_service_settings_trust_the_front_end_log_json_and_use_the_passwordless_engine():
    env = production_env(
        "web",
        database_url="postgres://app-web-abc@psql-abc.postgres.database.azure.com:5432/relay?sslmode=require",
        redis_url="rediss://:key%2Bwith%2Fslash@redis-abc.redis.cache.windows.net:6380/0",
    )
    shown = show_settings(env)
    assert shown["engine"] == "apps.core.db.postgresql"
    assert (shown["host"], shown["user"], shown["password"]) == (
        "psql-abc.postgres.database.azure.com",
        "app-web-abc",
        "",
    )
    assert shown["options"] == {"sslmode": "require"}
    assert shown["allowed_hosts"] == ["app-web-deploytest.azurewebsites.net"] * 2
    assert shown["csrf_trusted_origins"] == ["https://app-web-deploytest.azurewebsites.net"]
    assert shown["cache"] == shown["broker"] == "rediss://:key%2Bwith%2Fslash@redis-abc.redis.cache.windows.net:6380/0"
    assert shown["debug"] is False
    assert shown["log_formatter"] == "json"
    assert shown["static"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert shown["proxy_ssl"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["dramatiq_middleware"][0] == "apps.core.telemetry.TelemetryMiddleware"


def test_a_password_in_the_url_or_a_local_host_keeps_the_stock_engine():
    with_password = production_env(
        "web", database_url="postgres://u:pw@psql-abc.postgres.database.azure.com/relay", redis_url="redis://x:6379/0"
    )
    assert show_settings(with_password)["engine"] == "django.db.backends.postgresql"
    local = production_env("web", database_url="postgres://postgres@127.0.0.1/relay", redis_url="redis://x:6379/0")
    assert show_settings(local)["engine"] == "django.db.backends.postgresql"
    forced = {**local, "DATABASE_ENTRA_AUTH": "true"}
    assert show_settings(forced)["engine"] == "apps.core.db.postgresql"


def test_a_rediss_url_gives_tls_connections_to_port_6380_for_cache_and_broker():
    from dramatiq.brokers.redis import RedisBroker

    url = "rediss://:secret@redis-abc.redis.cache.windows.net:6380/0"
    pool = redis.ConnectionPool.from_url(url)
    assert pool.connection_class is redis.SSLConnection
    assert (pool.connection_kwargs["host"], pool.connection_kwargs["port"]) == (
        "redis-abc.redis.cache.windows.net",
        6380,
    )
    assert pool.connection_kwargs["password"] == "secret"
    broker = RedisBroker(url=url, middleware=[])
    assert broker.client.connection_pool.connection_class is redis.SSLConnection
    from django_redis.pool import ConnectionFactory

    factory = ConnectionFactory({"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2})
    cache_pool = factory.get_or_create_connection_pool(factory.make_connection_params(url))
    assert cache_pool.connection_class is redis.SSLConnection
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"


def test_gunicorn_binds_port_trusts_the_front_end_and_caps_workers(monkeypatch):
    import runpy

    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    config = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert config["bind"] == "0.0.0.0:8123"
    assert config["workers"] == min(2, os.cpu_count() * 2 + 1)
    assert config["forwarded_allow_ips"] == "*"
    assert (config["timeout"], config["accesslog"]) == (60, "-")
    assert config["graceful_timeout"] > 0 and config["keepalive"] > 0 and config["threads"] >= 1
    monkeypatch.delenv("WEB_CONCURRENCY")
    monkeypatch.delenv("PORT")
    config = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert config["bind"] == "0.0.0.0:8000"
    assert config["workers"] == os.cpu_count() * 2 + 1
