# Relay container image: the same code and start scripts App Service runs.
#   docker build -t relay .
#   docker run -p 8000:8000 --env-file .env relay                      # web (gunicorn, migrations first)
#   docker run --env-file .env relay bash deploy/worker.sh             # worker (rundramatiq + health on $PORT)
# Stage 1 builds every wheel; stage 2 installs them without a compiler or network and runs as a non-root user.

FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt \
    && cp requirements.txt /wheels/


FROM python:3.11.14-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.base \
    PORT=8000
RUN groupadd --system --gid 10001 relay \
    && useradd --system --uid 10001 --gid relay --home-dir /app --no-create-home --shell /usr/sbin/nologin relay
WORKDIR /app
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels -r /wheels/requirements.txt \
    && rm -rf /wheels
# Code stays root-owned: the app user can read it but not change it.
COPY . .
# Static files are collected into the image (whitenoise serves them). The values below exist only for this
# step: the settings refuse to load without them when DEBUG is off, and nothing is stored or signed.
RUN DJANGO_SECRET_KEY=collectstatic-only \
    FIELD_ENCRYPTION_KEY=Y29sbGVjdHN0YXRpYy1vbmx5LW5vdC1hLXJlYWxrZXk= \
    python manage.py collectstatic --noinput --verbosity 0
USER 10001:10001
EXPOSE 8000
# Both the web (/health/ in Django) and the worker (deploy/worker_health.py) answer /health/ on $PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["bash", "deploy/web.sh"]
