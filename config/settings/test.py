"""Test settings: the real PostgreSQL and Redis on 127.0.0.1 (override with DATABASE_URL / REDIS_URL)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("DRAMATIQ_NAMESPACE", "relay-test")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "k2Xw7n0aWmG2bY1q3jv5m8qR9tU4xZ6cA0dE1fH2iJ4=")

from .base import *  # noqa: F403

ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SECURE_SSL_REDIRECT = False
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["handlers"]["console"]["formatter"] = "plain"  # noqa: F405
# Keep retries quick in tests (the pipeline actors read these when they are declared).
TASK_MIN_BACKOFF_MS = 100
OUTBOUND_RETRY_BACKOFF_MS = 100
OUTBOUND_RETRY_MAX_BACKOFF_MS = 2000
# Three AI attempts, so a test can see the actor give up.
AI_MAX_RETRIES = 2
# Every test starts with a cleared cache; check the keyword index version on every match.
MESSAGE_TEMPLATES_INDEX_CHECK_SECONDS = 0
# Most tests post a webhook and look at the stored message at once: they run the direct path. The deferred path
# (the production default) has its own tests, the both-ways ones switch it per test, and the reliability suite
# runs each of its processes' tests both ways (tests/reliability/conftest.py sets this variable).
WEBHOOK_DEFERRED_INGEST = env.bool("WEBHOOK_DEFERRED_INGEST", default=False)  # noqa: F405
