"""POST send/: queue a text or a template to a phone number, exactly once per Idempotency-Key."""

from __future__ import annotations

import hashlib
import json
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import ApiIdempotencyRecord
from apps.core.exceptions import ApplicationError, ConflictError
from apps.core.phone import InvalidPhoneNumber, phone_normalize
from apps.message_templates.services import template_get

from ..models import Channel, Contact, Message
from ..services.contacts import contact_resolve
from ..services.outbound import outbound_template_create, outbound_text_create
from .base import COMMON_ERRORS, ErrorSerializer, WriteApiView, bad_request, error_example
from .templates import ParametersField, parameters_as_values

# Keys derived here are UUIDs (ACS sends them as Repeatability-Request-ID), unique per user and client key.
SEND_KEY_NAMESPACE = uuid.UUID("6f7a1f3e-3d55-4a0e-9a49-2f3d2b7c6e10")


class IdempotencyKeyMissing(ApplicationError):
    code = "IDEMPOTENCY_KEY_REQUIRED"


class IdempotencyKeyConflict(ConflictError):
    code = "IDEMPOTENCY_KEY_REUSED"


def send_message_key(*, user_id: int, client_key: str) -> uuid.UUID:
    return uuid.uuid5(SEND_KEY_NAMESPACE, f"{user_id}:{client_key}")


def _request_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _replay(record: ApiIdempotencyRecord, request_hash: str) -> Message:
    if record.request_hash != request_hash:
        raise IdempotencyKeyConflict(
            "This Idempotency-Key was already used with a different request body.",
            {"idempotency_key": record.client_key},
        )
    message = Message.objects.filter(idempotency_key=str(record.message_key)).first()
    if message is None:  # the first request is still being committed or failed: the client retries
        raise ConflictError(
            "A request with this Idempotency-Key is in progress.", {"idempotency_key": record.client_key}
        )
    return message


def _contact_for(phone: str, channel: str) -> Contact:
    # An existing contact keeps the channel it last wrote from; sending never changes it.
    contact = Contact.objects.filter(phone=phone).first()
    return contact or contact_resolve(channel=channel or settings.DEFAULT_CHANNEL, phone=phone)


def api_send(*, user, client_key: str, data: dict) -> tuple[Message, bool]:
    """Queue the message described by `data` for `user`, once per `client_key`. Returns (message, created).

    Raises IdempotencyKeyConflict (409) when the key was used with another body, WindowClosedError /
    OptedOutError (409), TemplateValidationError (400) and NotFoundError (404, unknown template).
    """
    request_hash = _request_hash(data)
    existing = ApiIdempotencyRecord.objects.filter(user=user, client_key=client_key).first()
    if existing is not None:
        return _replay(existing, request_hash), False
    message_key = send_message_key(user_id=user.pk, client_key=client_key)
    try:
        with transaction.atomic():
            # The unique (user, client_key) makes a concurrent twin wait here, then fail and replay below.
            record = ApiIdempotencyRecord.objects.create(
                user=user, client_key=client_key, message_key=message_key, request_hash=request_hash
            )
            contact = _contact_for(data["phone_number"], data.get("channel") or "")
            common = {"contact": contact, "channel": data.get("channel") or None, "idempotency_key": str(message_key)}
            if data.get("template_name"):
                template = template_get(name=data["template_name"], language=data.get("language") or "")
                values = parameters_as_values(template, data.get("parameters") or {})
                message = outbound_template_create(template=template, values=values, **common)
            else:
                message = outbound_text_create(text=data["message"], **common)
            record.message = message
            record.save(update_fields=["message"])
    except IntegrityError:
        record = ApiIdempotencyRecord.objects.filter(user=user, client_key=client_key).first()
        if record is None:
            raise
        return _replay(record, request_hash), False
    return message, True


class SendApi(WriteApiView):
    """Queue a WhatsApp message: free text inside the 24-hour window, or an approved template."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SendInput"

        phone_number = serializers.CharField(max_length=40)
        message = serializers.CharField(required=False, max_length=4096, help_text="Free-form text.")
        template_name = serializers.CharField(required=False, max_length=512)
        parameters = ParametersField(required=False, default=dict)
        language = serializers.CharField(required=False, max_length=15, default="")
        channel = serializers.ChoiceField(choices=Channel.choices, required=False)

        def validate_phone_number(self, value: str) -> str:
            try:
                return phone_normalize(value)
            except InvalidPhoneNumber as exc:
                raise serializers.ValidationError("Not a valid phone number.") from exc

        def validate(self, attrs: dict) -> dict:
            has_text = bool((attrs.get("message") or "").strip())
            if has_text == bool(attrs.get("template_name")):
                raise serializers.ValidationError("Give either `message` or `template_name` (with `parameters`).")
            return attrs

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SendOutput"

        id = serializers.IntegerField()
        status = serializers.CharField()
        channel = serializers.CharField()
        kind = serializers.CharField()
        idempotency_key = serializers.CharField()
        created = serializers.BooleanField(help_text="false when this replays an earlier request with the same key.")

    @extend_schema(
        operation_id="send_create",
        summary="Send a message",
        description=(
            "Queues the message and answers 202 with its id; follow it with GET messages/{id}/. The same "
            "Idempotency-Key returns the same message and never sends twice; the same key with another body "
            "is a 409. Outside the 24-hour window free text is refused with 409 WINDOW_CLOSED naming the "
            "template to send instead; marketing templates to opted-out contacts are refused with 409 OPTED_OUT."
        ),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="Any string up to 255 characters, unique per message you mean to send.",
            )
        ],
        request=InputSerializer,
        examples=[
            OpenApiExample(
                "Text", value={"phone_number": "+254712345678", "message": "Your table is ready."}, request_only=True
            ),
            OpenApiExample(
                "Template",
                value={
                    "phone_number": "+254712345678",
                    "template_name": "booking_confirmation",
                    "parameters": {"name": "Ana", "activity": "kayak", "date": "3 de diciembre"},
                    "language": "es",
                },
                request_only=True,
            ),
        ],
        responses={
            202: OpenApiResponse(
                OutputSerializer,
                examples=[
                    OpenApiExample(
                        "Queued",
                        value={
                            "id": 913,
                            "status": "queued",
                            "channel": "acs",
                            "kind": "text",
                            "idempotency_key": "order-8812-ready",
                            "created": True,
                        },
                        response_only=True,
                    )
                ],
            ),
            **bad_request(
                error_example(
                    "Neither text nor template",
                    "VALIDATION_ERROR",
                    "Invalid input.",
                    {"fields": {"non_field_errors": ["Give either `message` or `template_name` (with `parameters`)."]}},
                ),
                error_example(
                    "No Idempotency-Key",
                    "IDEMPOTENCY_KEY_REQUIRED",
                    "Send an Idempotency-Key header (up to 255 characters).",
                ),
            ),
            404: OpenApiResponse(
                ErrorSerializer,
                examples=[
                    error_example(
                        "Unknown template",
                        "NOT_FOUND",
                        "No active approved template named 'nope'.",
                        {"template": "nope", "language": ""},
                        status=404,
                    )
                ],
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                examples=[
                    error_example(
                        "Window closed",
                        "WINDOW_CLOSED",
                        "The 24-hour customer service window is closed: only an approved template can be sent.",
                        {"template": "vea_request_received", "last_inbound_at": "2026-11-28T10:00:00+00:00"},
                        status=409,
                    ),
                    error_example(
                        "Key reused",
                        "IDEMPOTENCY_KEY_REUSED",
                        "This Idempotency-Key was already used with a different request body.",
                        {"idempotency_key": "order-8812-ready"},
                        status=409,
                    ),
                ],
            ),
            **COMMON_ERRORS,
        },
        tags=["send"],
    )
    def post(self, request: Request) -> Response:
        client_key = (request.headers.get("Idempotency-Key") or "").strip()
        if not client_key or len(client_key) > 255:
            raise IdempotencyKeyMissing("Send an Idempotency-Key header (up to 255 characters).")
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        message, created = api_send(user=request.user, client_key=client_key, data=params.validated_data)
        body = {
            "id": message.pk,
            "status": message.status,
            "channel": message.channel,
            "kind": message.kind,
            "idempotency_key": client_key,
            "created": created,
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_202_ACCEPTED)
