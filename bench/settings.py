"""Settings for benchmark servers: production settings plus the baseline views of bench/baseline_urls.py.

The same gunicorn process serves Relay's webhooks and the two baselines, so every figure in one run comes from
the same workers, middleware stack, database and Redis.
"""

from __future__ import annotations

from config.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.baseline_urls"
# The load generator talks plain HTTP on 127.0.0.1; production redirects that to HTTPS.
SECURE_SSL_REDIRECT = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
