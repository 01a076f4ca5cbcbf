"""The baselines of the ingest benchmark (P1), served beside Relay's own URLs.

(a) `bench/bare/`: a Django view that reads the body and answers JSON — the cost of Django + gunicorn alone.
(b) `bench/ingest/`: the least a durable webhook can do — one INSERT (committed) and one Redis LPUSH — with
    no signature check, no parsing into events, no contact upsert. Relay's webhooks are measured against it.
(c) `bench/storage/`: what Relay's direct path stores for one message (the webhooks' path with
    WEBHOOK_DEFERRED_INGEST off, and the worker's first step with it on), and nothing of the HTTP edge: the
    InboundEvent built from the body by hand (no signature, no validation, no phone-number parsing), then Relay's
    own events_ingest, i.e. contact upsert, message row, WebhookLog row, Dramatiq enqueue. Not a target: beside
    the webhooks it shows what deferring the rows to the worker saves them.
(d) `bench/inbox/`: not a target, off by default (`BENCH_P1_TARGETS` adds it, see bench/ingest.py): the ACS
    webhook's own signature check and parsing, then one INSERT of the verified body into (b)'s table and the
    Dramatiq enqueue of its id. The probe that measured deferred ingest before it was built; the floor for it.
"""

from __future__ import annotations

import json
from functools import cache

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.channels.base import InboundEvent
from apps.channels.registry import channel_get
from apps.interactions import tasks
from apps.interactions.services import events_ingest
from bench.baseline_table import QUEUE, TABLE


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


@csrf_exempt
@require_POST
def bare(request):
    _ = request.body
    return JsonResponse({"status": "accepted"})


@csrf_exempt
@require_POST
def durable_ingest(request):
    # The ACS body: a JSON list of Event Grid events; the first carries the message id.
    body = request.body.decode()
    message_id = json.loads(body)[0]["data"]["messageId"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (provider_message_id, body) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [message_id, body],
        )
    _redis().lpush(QUEUE, message_id)
    return JsonResponse({"status": "accepted"})


@csrf_exempt
@require_POST
def relay_storage(request):
    body = request.body.decode()
    item = json.loads(body)[0]
    data = item["data"]
    event = InboundEvent(
        channel="acs",
        provider_message_id=data["messageId"],
        sender_phone="+" + data["from"],
        sender_bsuid="",
        received_at=timezone.now(),
        text=data["content"],
        recipient=data["to"],
        raw=item,
    )
    log = {"method": "POST", "path": request.path, "headers": dict(request.headers), "body": body, "status_code": 200}
    events_ingest(channel="acs", events=[event], log=log)
    return JsonResponse({"status": "accepted"})


@csrf_exempt
@require_POST
def verified_inbox(request):
    channel = channel_get("acs")
    channel.verify(request)  # SignatureError -> 500 here; the load generator signs every request
    event = channel.parse(request)[0]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (provider_message_id, body) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING id",
            [event.provider_message_id, request.body.decode()],
        )
        row = cursor.fetchone()
    if row is not None:
        tasks.inbound_process_task.send(row[0])  # no worker runs in P1: the message only waits in Redis
    return channel.acknowledge(request)


urlpatterns = [
    path("bench/bare/", bare),
    path("bench/inbox/", verified_inbox),
    path("bench/ingest/", durable_ingest),
    path("bench/storage/", relay_storage),
    path("", include("config.urls")),
]
