"""POST send/: queue a text or a template to a phone number, exactly once per Idempotency-Key."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.services import IdempotencyKeyMissing, api_send
from apps.core.phone import InvalidPhoneNumber, phone_normalize

from ..models import Channel
from .base import COMMON_ERRORS, ErrorSerializer, WriteApiView, bad_request, error_example
from .templates import ParametersField


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
