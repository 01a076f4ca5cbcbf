"""Relay settings, read from the environment (django-environ).

Embedded defaults (no environment at all) give a runnable development server: SQLite, local-memory cache,
the stub Dramatiq broker with an in-process worker and the sandbox channel. Production sets
`DATABASE_URL`, `REDIS_URL` and provider credentials; with `DJANGO_DEBUG` off every secret must be set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# No default in production: a missing key must stop the process, not run with a known secret.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-dev-only-key" if DEBUG else None)
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# App Service sets WEBSITE_HOSTNAME to the site's public host name.
WEBSITE_HOSTNAME = env.str("WEBSITE_HOSTNAME", default="")
if WEBSITE_HOSTNAME:
    ALLOWED_HOSTS.append(WEBSITE_HOSTNAME)
    CSRF_TRUSTED_ORIGINS.append(f"https://{WEBSITE_HOSTNAME}")

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    # Must come before the local apps: it creates the broker the actors bind to.
    "django_dramatiq",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
LOCAL_APPS = [
    "apps.core",
    "apps.channels",
    "apps.message_templates",
    "apps.assistant",
    "apps.interactions",
    "apps.accounts",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The in-process worker writes from other threads; wait for the lock instead of failing. IMMEDIATE takes the
    # write lock at BEGIN: a deferred transaction that read first and then writes gets SQLITE_BUSY at once
    # (no waiting) when another thread writes meanwhile, which the webhook answered as 503. WAL lets the
    # readers (sandbox page, admin) go on while the worker writes.
    _sqlite = DATABASES["default"].setdefault("OPTIONS", {})
    _sqlite["timeout"] = 20
    _sqlite["transaction_mode"] = "IMMEDIATE"
    _sqlite["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# Passwordless Azure Database for PostgreSQL: no password in DATABASE_URL means a Microsoft Entra token from
# the managed identity (apps.core.db.postgresql). DATABASE_ENTRA_AUTH forces it on or off.
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_ENTRA_AUTH",
    default=not _db.get("PASSWORD") and str(_db.get("HOST", "")).endswith(".postgres.database.azure.com"),
):
    _db["ENGINE"] = "apps.core.db.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "relay"}}

DRAMATIQ_MIDDLEWARE = [
    # A span per message, child of the request that enqueued it; configures telemetry in worker processes.
    "apps.core.telemetry.TelemetryMiddleware",
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Pipelines",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    # Worker heartbeat (cache key worker:heartbeat) and the sweeper that re-enqueues work left behind.
    "apps.interactions.middleware.WorkerMaintenance",
    # One worker process LISTENs for deferred webhook deliveries and sends their tasks (WEBHOOK_DEFERRED_INGEST).
    "apps.interactions.pump.DeliveryPump",
    # Refreshes the statistics rollups every ROLLUP_REFRESH_INTERVAL_SECONDS.
    "apps.interactions.statistics.middleware.RollupsRefresher",
]
if REDIS_URL:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": REDIS_URL, "namespace": env.str("DRAMATIQ_NAMESPACE", default="relay")},
        "MIDDLEWARE": DRAMATIQ_MIDDLEWARE,
    }
else:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.stub.StubBroker",
        "OPTIONS": {},
        "MIDDLEWARE": DRAMATIQ_MIDDLEWARE,
    }
# How long an idle worker may sleep before it looks at a queue again. Dramatiq's Redis consumer backs off
# exponentially on an empty queue, up to this (its default is 1 s): after a quiet spell the next message waited
# up to a second before a worker saw it. Read from the environment by dramatiq.worker at import, before Django
# is set up, so it is exported here for the `dramatiq` process that `manage.py rundramatiq` starts.
DRAMATIQ_WORKER_TIMEOUT_MS = env.int("DRAMATIQ_WORKER_TIMEOUT_MS", default=100)
os.environ.setdefault("dramatiq_worker_timeout", str(DRAMATIQ_WORKER_TIMEOUT_MS))
# Starts a Dramatiq worker inside the web process (make run with the stub broker).
RELAY_INPROCESS_WORKER = env.bool("RELAY_INPROCESS_WORKER", default=False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}

# Behind App Service's front end the original scheme arrives in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=bool(WEBSITE_HOSTNAME))
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # The platform's health probe calls plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^api/v1/whatsapp/health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Webhook bodies above this are answered 413 before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1_048_576)
# On (PostgreSQL): a webhook stores a one-message delivery as one row (and a NOTIFY) and answers, without the
# broker; a worker's delivery pump sends the task that makes the contact, message and WebhookLog rows. P1: the
# webhooks at ~0.81-0.84 of the durable baseline against ~0.5 off; ~5 % more CPU per message in all, moved to the
# worker, and new messages visible once a worker has taken them. Off: the webhook stores those rows itself. On by
# default, the only setting that met both P1 and P2; SQLite (make run) always takes the direct path. See
# apps/interactions/services/deferred.py, apps/interactions/pump.py and the README's P1 / P2 figures.
WEBHOOK_DEFERRED_INGEST = env.bool("WEBHOOK_DEFERRED_INGEST", default=True)
# How often a worker that is not the delivery pump (apps/interactions/pump.py) tries to become it, and how soon a
# pump that lost its database connection tries again.
DELIVERY_PUMP_STANDBY_SECONDS = env.float("DELIVERY_PUMP_STANDBY_SECONDS", default=5.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"api_client": env.str("API_THROTTLE_RATE", default="600/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Relay API",
    "DESCRIPTION": "Template-first WhatsApp platform: webhooks, sending, history and statistics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Channels -------------------------------------------------------------------------------------
ACS_CONNECTION_STRING = env.str("ACS_CONNECTION_STRING", default="")
ACS_ENDPOINT = env.str("ACS_ENDPOINT", default="")
ACS_CHANNEL_REGISTRATION_ID = env.str("ACS_CHANNEL_REGISTRATION_ID", default="")
# Several secrets, comma-separated, are accepted at once while one is being rotated.
ACS_EVENTGRID_SECRET = env.list("ACS_EVENTGRID_SECRET", default=[])
ACS_ENABLED = env.bool("ACS_ENABLED", default=bool(ACS_CONNECTION_STRING or ACS_ENDPOINT))

TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_WHATSAPP_NUMBER = env.str("TWILIO_WHATSAPP_NUMBER", default="")
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com")
TWILIO_ENABLED = env.bool("TWILIO_ENABLED", default=bool(TWILIO_ACCOUNT_SID))

META_ACCESS_TOKEN = env.str("META_ACCESS_TOKEN", default="")
META_PHONE_NUMBER_ID = env.str("META_PHONE_NUMBER_ID", default="")
META_APP_SECRET = env.str("META_APP_SECRET", default="")
META_VERIFY_TOKEN = env.str("META_VERIFY_TOKEN", default="")
META_GRAPH_BASE_URL = env.str("META_GRAPH_BASE_URL", default="https://graph.facebook.com/v21.0")
META_ENABLED = env.bool("META_ENABLED", default=bool(META_ACCESS_TOKEN))

SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=DEBUG)
# The channel used for messages not triggered by a contact (send API, flows) when the contact has none.
DEFAULT_CHANNEL = env.str("DEFAULT_CHANNEL", default="acs" if ACS_ENABLED else "sandbox")
# Public base URL of this deployment, for provider callbacks (Twilio StatusCallback).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default=f"https://{WEBSITE_HOSTNAME}" if WEBSITE_HOSTNAME else "")
# Only for local development against real providers; refused at startup unless DEBUG is on.
SKIP_WEBHOOK_SIGNATURE_VERIFICATION = env.bool("SKIP_WEBHOOK_SIGNATURE_VERIFICATION", default=False)

CHANNEL_HTTP_TIMEOUT_SECONDS = env.float("CHANNEL_HTTP_TIMEOUT_SECONDS", default=10.0)
MEDIA_MAX_BYTES = env.int("MEDIA_MAX_BYTES", default=16 * 1024 * 1024)
# Send pacing (apps/channels/throttle.py): messages per second per sender number, and a burst per recipient.
ACS_SEND_RATE_PER_SECOND = env.int("ACS_SEND_RATE_PER_SECOND", default=80)
TWILIO_SEND_RATE_PER_SECOND = env.int("TWILIO_SEND_RATE_PER_SECOND", default=80)
META_SEND_RATE_PER_SECOND = env.int("META_SEND_RATE_PER_SECOND", default=80)
SEND_RECIPIENT_MAX_PER_MINUTE = env.int("SEND_RECIPIENT_MAX_PER_MINUTE", default=10)

# --- Pipeline -------------------------------------------------------------------------------------
RATE_LIMIT_MAX_REQUESTS = env.int("RATE_LIMIT_MAX_REQUESTS", default=20)
RATE_LIMIT_WINDOW_SECONDS = env.int("RATE_LIMIT_WINDOW_SECONDS", default=60)
# E.164 numbers (comma-separated); empty means everyone may write.
ALLOWED_PHONE_NUMBERS = env.list("ALLOWED_PHONE_NUMBERS", default=[])
CONVERSATION_WINDOW_HOURS = 24
FALLBACK_TEMPLATE_NAME = env.str("FALLBACK_TEMPLATE_NAME", default="vea_request_received")
# Below this keyword confidence a match is treated as no match.
INTENT_MIN_CONFIDENCE = env.float("INTENT_MIN_CONFIDENCE", default=0.6)
# Messages still unprocessed after this long are re-enqueued by the sweeper.
SWEEPER_STALE_SECONDS = env.int("SWEEPER_STALE_SECONDS", default=60)
SWEEPER_INTERVAL_SECONDS = env.int("SWEEPER_INTERVAL_SECONDS", default=30)
OUTBOUND_MAX_RETRIES = env.int("OUTBOUND_MAX_RETRIES", default=8)
# Transient send failures back off from this, doubling per attempt (a provider's Retry-After wins if longer).
OUTBOUND_RETRY_BACKOFF_MS = env.int("OUTBOUND_RETRY_BACKOFF_MS", default=2000)
OUTBOUND_RETRY_MAX_BACKOFF_MS = env.int("OUTBOUND_RETRY_MAX_BACKOFF_MS", default=300_000)
# Infrastructure errors (database down) in the inbound actor; message-level errors are never retried.
INBOUND_MAX_RETRIES = env.int("INBOUND_MAX_RETRIES", default=10)
TASK_MIN_BACKOFF_MS = env.int("TASK_MIN_BACKOFF_MS", default=5000)
# Language of the pipeline's own texts (opt-out confirmation, rate-limit notice) when the contact's is unknown.
DEFAULT_LANGUAGE = env.str("DEFAULT_LANGUAGE", default="es")
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=10)
# The app whose services answer what no template matched; empty = no AI, the fallback template answers.
AI_FALLBACK_APP = env.str("AI_FALLBACK_APP", default="apps.assistant")
RAW_PAYLOAD_RETENTION_DAYS = env.int("RAW_PAYLOAD_RETENTION_DAYS", default=30)
DATASOURCE_STATEMENT_TIMEOUT_MS = env.int("DATASOURCE_STATEMENT_TIMEOUT_MS", default=2000)
# PostgreSQL role data source queries run as (SET LOCAL ROLE), e.g. one with SELECT on business tables only.
DATASOURCE_DATABASE_ROLE = env.str("DATASOURCE_DATABASE_ROLE", default="")
# How often a process checks the shared version of the keyword index (writers in-process reset it at once).
MESSAGE_TEMPLATES_INDEX_CHECK_SECONDS = env.float("MESSAGE_TEMPLATES_INDEX_CHECK_SECONDS", default=1.0)

# --- Assistant (AI fallback) ----------------------------------------------------------------------
# The default provider when no AIConfiguration is active; empty key = no AI (answers from retrieval alone).
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
AI_MODEL = env.str("AI_MODEL", default="gpt-4o-mini")
# Azure OpenAI from settings (the azd deployment): AI_MODEL names the deployment; with no OPENAI_API_KEY the
# managed identity is used.
AZURE_OPENAI_ENDPOINT = env.str("AZURE_OPENAI_ENDPOINT", default="")
AZURE_OPENAI_API_VERSION = env.str("AZURE_OPENAI_API_VERSION", default="2024-10-21")
# Empty = no embeddings (full-text retrieval only).
AI_EMBEDDING_MODEL = env.str("AI_EMBEDDING_MODEL", default="")
AI_TRANSCRIPTION_MODEL = env.str("AI_TRANSCRIPTION_MODEL", default="whisper-1")
AI_MAX_TOKENS = env.int("AI_MAX_TOKENS", default=500)
AI_TEMPERATURE = env.float("AI_TEMPERATURE", default=0.2)
# Empty = the built-in polite reply in the user's language.
AI_NO_KNOWLEDGE_REPLY = env.str("AI_NO_KNOWLEDGE_REPLY", default="")
# The language of built-in replies when the contact's cannot be told ("es" or "en").
AI_DEFAULT_LANGUAGE = env.str("AI_DEFAULT_LANGUAGE", default="es")
# The ai_answer actor: time limit, retries and maximum age of a message worth answering.
AI_TIME_LIMIT_MS = env.int("AI_TIME_LIMIT_MS", default=90_000)
AI_MAX_RETRIES = env.int("AI_MAX_RETRIES", default=5)
AI_MAX_AGE_MS = env.int("AI_MAX_AGE_MS", default=900_000)
# A contact's later messages wait this long behind an unfinished AI answer, so replies keep arrival order; past
# it (a model down, an AI task dropped) they go ahead, picked up by the sweeper. 0 turns the waiting off.
AI_REPLY_ORDER_WAIT_SECONDS = env.int("AI_REPLY_ORDER_WAIT_SECONDS", default=120)
# One HTTP call to the model; below AI_TIME_LIMIT_MS so a timeout is an error we map, not a killed actor.
AI_REQUEST_TIMEOUT_SECONDS = env.float("AI_REQUEST_TIMEOUT_SECONDS", default=30.0)
# Intent classification runs on the template path: short, and a failure means "no intent".
AI_CLASSIFY_TIMEOUT_SECONDS = env.float("AI_CLASSIFY_TIMEOUT_SECONDS", default=8.0)
MAX_CONVERSATION_HISTORY = env.int("MAX_CONVERSATION_HISTORY", default=10)
SESSION_TIMEOUT_MINUTES = env.float("SESSION_TIMEOUT_MINUTES", default=30)
AI_MIN_RETRIEVAL_SCORE = env.float("AI_MIN_RETRIEVAL_SCORE", default=0.05)
AI_RETRIEVAL_TOP_K = env.int("AI_RETRIEVAL_TOP_K", default=4)
AI_MEDIA_MAX_BYTES = env.int("AI_MEDIA_MAX_BYTES", default=10 * 1024 * 1024)
AI_PDF_MAX_PAGES = env.int("AI_PDF_MAX_PAGES", default=30)

# --- REST API and statistics ---------------------------------------------------------------------
# Delivery receipts keep changing replies' statuses after their hour; each refresh recomputes this far back.
ROLLUP_REFRESH_LOOKBACK_HOURS = env.int("ROLLUP_REFRESH_LOOKBACK_HOURS", default=48)
ROLLUP_REFRESH_INTERVAL_SECONDS = env.int("ROLLUP_REFRESH_INTERVAL_SECONDS", default=300)
STATISTICS_MAX_RANGE_DAYS = env.int("STATISTICS_MAX_RANGE_DAYS", default=400)

# --- Secrets at rest ------------------------------------------------------------------------------
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

APPLICATIONINSIGHTS_CONNECTION_STRING = env.str("APPLICATIONINSIGHTS_CONNECTION_STRING", default="")

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_phones": {"()": "apps.core.logging.MaskPhoneNumbersFilter"}},
    "formatters": {
        "json": {"()": "apps.core.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["mask_phones"],
            "formatter": env.str("LOG_FORMAT", default="plain" if DEBUG else "json"),
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The Azure SDK logs every request and its headers at INFO; Relay logs each send itself.
        "azure.core.pipeline.policies.http_logging_policy": {"level": "WARNING"},
    },
}
