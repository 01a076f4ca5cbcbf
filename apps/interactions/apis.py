"""HTTP entry points of the pipeline: provider webhooks and the sandbox chat API.

Webhooks follow one order: size check → verify → (handshake) → parse every item → persist all items and the
WebhookLog in one transaction → enqueue on commit → acknowledge. A 2xx goes out only once the rows are
committed; with the database away the answer is 503 + Retry-After, so the provider delivers again.
"""

from __future__ import annotations

import logging
import time
from typing import cast

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.channels.base import InboundEvent, MalformedPayload, SignatureError
from apps.channels.registry import channel_get
from apps.core.exceptions import error_body
from apps.core.phone import InvalidPhoneNumber, mask, phone_normalize

from .models import Direction, Message
from .selectors import contact_by_phone, conversation_messages
from .services import events_ingest, webhook_log_write

logger = logging.getLogger(__name__)

DB_RETRY_AFTER_SECONDS = 30
_DATABASE_DOWN = (OperationalError, InterfaceError)


def _error(status: int, code: str, message: str, details: dict | None = None, **headers: str) -> JsonResponse:
    response = JsonResponse(error_body(code, message, details), status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _too_large() -> JsonResponse:
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    return _error(413, "PAYLOAD_TOO_LARGE", f"Request body over {limit} bytes.", {"max_bytes": limit})


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _log_refusal(channel_name: str, request: HttpRequest, status: int, error: str, body: str, started: float) -> None:
    """Best effort: a refused request is worth a log row, but never worth failing the answer."""
    try:
        webhook_log_write(
            channel=channel_name,
            method=request.method or "",
            path=request.path,
            headers=dict(request.headers),
            body=body,
            status_code=status,
            duration_ms=int((time.monotonic() - started) * 1000),
            error=error,
        )
    except Exception:
        logger.warning("could not write the webhook log for a %s answer", status, exc_info=True)


@csrf_exempt
def webhook_receive(request: HttpRequest, channel_name: str) -> HttpResponse:
    """One provider webhook endpoint (the URLconf fixes `channel_name`)."""
    started = time.monotonic()
    try:
        channel = channel_get(channel_name)
    except KeyError:
        return _error(404, "NOT_FOUND", "Unknown channel.")
    if not channel.enabled():
        return _error(404, "NOT_FOUND", f"The {channel_name} channel is not enabled.")
    if _declared_length(request) > settings.WEBHOOK_MAX_BODY_BYTES:
        return _too_large()

    if request.method in ("GET", "HEAD", "OPTIONS"):
        response = channel.handshake(request)
        if response is None:
            if request.method == "OPTIONS":
                return _error(400, "NOT_A_HANDSHAKE", "Not an endpoint validation request.")
            return _error(405, "METHOD_NOT_ALLOWED", "Use POST.", Allow="POST")
        return response
    if request.method != "POST":
        return _error(405, "METHOD_NOT_ALLOWED", "Use POST.", Allow="POST")

    try:
        body = request.body
    except RequestDataTooBig:
        return _too_large()
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return _too_large()

    try:
        channel.verify(request)
    except SignatureError as exc:
        logger.warning("%s webhook refused: %s", channel_name, exc)
        _log_refusal(channel_name, request, 403, f"signature: {exc}", "", started)
        return _error(403, "INVALID_SIGNATURE", "The request signature or secret is missing or wrong.")

    handshake = channel.handshake(request)
    if handshake is not None:
        return handshake

    text = _body_text(body)
    try:
        events = channel.parse(request)
    except MalformedPayload as exc:
        _log_refusal(channel_name, request, 400, f"malformed: {exc}", text, started)
        return _error(400, "MALFORMED_PAYLOAD", str(exc) or "The request body cannot be read.")

    try:
        result = events_ingest(
            channel=channel_name,
            events=events,
            log={
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers),
                "body": text,
                "status_code": 200,
                "duration_ms": int((time.monotonic() - started) * 1000),
            },
            defer=settings.WEBHOOK_DEFERRED_INGEST,
        )
    except _DATABASE_DOWN:
        logger.exception("%s webhook not saved: database unavailable", channel_name)
        return _error(
            503,
            "SERVICE_UNAVAILABLE",
            "Temporarily unable to store the delivery; retry later.",
            Retry_After=str(DB_RETRY_AFTER_SECONDS),
        )
    logger.info(
        "%s webhook: %s new, %s duplicate, %s statuses, %s deferred",
        channel_name,
        len(result.messages),
        result.duplicates,
        result.statuses,
        result.deferred,
    )
    return channel.acknowledge(request)


# --- sandbox chat API ------------------------------------------------------------------------------------


def message_as_json(message: Message) -> dict:
    """One chat bubble: what the sandbox page and `manage.py chat` show."""
    text = message.text
    if message.kind == "template" and not text:
        values = ", ".join(f"{name}={value}" for name, value in message.template_parameters)
        text = f"[{message.template_name}] {values}".strip()
    interaction = getattr(message, "interaction", None) if message.direction == Direction.INBOUND else None
    media = message.media or {}
    return {
        "id": message.pk,
        "direction": message.direction,
        "kind": message.kind,
        "text": text,
        "status": message.status,
        "template_name": message.template_name,
        "template_language": message.template_language,
        "template_parameters": message.template_parameters,
        "in_reply_to": message.in_reply_to_id,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "media": {k: media[k] for k in ("url", "file_name", "mime_type", "caption") if media.get(k)},
        "route": interaction.route if interaction else "",
        "intent": interaction.intent if interaction else "",
        "created_at": message.created_at.isoformat(),
    }


def _sandbox_post(request: HttpRequest) -> HttpResponse:
    channel = channel_get("sandbox")
    if len(request.body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return _too_large()
    try:
        events = channel.parse(request)
        phone_normalize(cast(InboundEvent, events[0]).sender_phone)  # the sandbox parses messages only
    except MalformedPayload as exc:
        return _error(400, "VALIDATION_ERROR", str(exc))
    except InvalidPhoneNumber as exc:
        return _error(400, "VALIDATION_ERROR", f"phone: {exc}")
    try:
        result = events_ingest(channel="sandbox", events=events)
    except _DATABASE_DOWN:
        return _error(503, "SERVICE_UNAVAILABLE", "Database unavailable; retry.", Retry_After="5")
    message = result.messages[0]
    logger.info("sandbox message %s from %s", message.pk, mask(message.contact.address))
    return JsonResponse({"message": message_as_json(message)}, status=201)


def _sandbox_get(request: HttpRequest) -> HttpResponse:
    try:
        phone = phone_normalize(request.GET.get("phone", ""))
    except InvalidPhoneNumber as exc:
        return _error(400, "VALIDATION_ERROR", f"phone: {exc}")
    try:
        after = int(request.GET.get("after") or 0)
    except ValueError:
        return _error(400, "VALIDATION_ERROR", "after must be a message id")
    contact = contact_by_phone(phone=phone)
    messages = (
        [] if contact is None else [message_as_json(m) for m in conversation_messages(contact=contact, after_id=after)]
    )
    return JsonResponse({"phone": phone, "messages": messages})


@csrf_exempt
def sandbox_messages(request: HttpRequest) -> HttpResponse:
    """POST: a chat message from a pretend WhatsApp user (through the real pipeline). GET: the conversation."""
    if not settings.SANDBOX_ENABLED:
        return _error(404, "NOT_FOUND", "The sandbox is not enabled (SANDBOX_ENABLED).")
    if request.method == "POST":
        return _sandbox_post(request)
    if request.method == "GET":
        return _sandbox_get(request)
    return _error(405, "METHOD_NOT_ALLOWED", "Use GET or POST.", Allow="GET, POST")
