from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.phone import InvalidPhoneNumber, phone_normalize

from ..selectors_history import contact_get_by_phone, message_get, message_history
from .base import COMMON_ERRORS, ErrorSerializer, ReadApiView, bad_request, error_example
from .serializers import MESSAGE_EXAMPLE, MessageSerializer


class HistoryApi(ReadApiView):
    """The conversation with one contact, both directions, newest first."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "HistoryInput"

        phone_number = serializers.CharField(max_length=40, help_text="E.164, with or without +, or whatsapp:+…")
        limit = serializers.IntegerField(min_value=1, max_value=200, default=50, required=False)
        before = serializers.IntegerField(
            min_value=1, required=False, help_text="Cursor: a message id; returns older messages."
        )

        def validate_phone_number(self, value: str) -> str:
            try:
                return phone_normalize(value)
            except InvalidPhoneNumber as exc:
                raise serializers.ValidationError("Not a valid phone number.") from exc

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "HistoryOutput"

        class ContactSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            phone_number = serializers.CharField(source="phone")
            profile_name = serializers.CharField()
            channel = serializers.CharField()
            last_inbound_at = serializers.DateTimeField(allow_null=True)
            opted_out = serializers.BooleanField()

        contact = ContactSerializer()
        messages = MessageSerializer(many=True)
        has_more = serializers.BooleanField()
        next_before = serializers.IntegerField(allow_null=True, help_text="Pass as `before` for the next page.")

    @extend_schema(
        operation_id="history_get",
        summary="Conversation history of one contact",
        description=(
            "Messages in both directions with their status events, newest first. Paginate with `before` = the "
            "`next_before` of the previous page. An unknown phone number answers 404."
        ),
        parameters=[InputSerializer],
        responses={
            200: OpenApiResponse(
                OutputSerializer,
                examples=[
                    OpenApiExample(
                        "One page",
                        value={
                            "contact": {
                                "id": 7,
                                "phone_number": "+254712345678",
                                "profile_name": "Ana",
                                "channel": "acs",
                                "last_inbound_at": "2026-12-01T09:30:00Z",
                                "opted_out": False,
                            },
                            "messages": [MESSAGE_EXAMPLE],
                            "has_more": True,
                            "next_before": 912,
                        },
                        response_only=True,
                    )
                ],
            ),
            **bad_request(
                error_example(
                    "Bad phone number",
                    "VALIDATION_ERROR",
                    "Invalid input.",
                    {"fields": {"phone_number": ["Not a valid phone number."]}},
                )
            ),
            404: OpenApiResponse(
                ErrorSerializer,
                examples=[
                    error_example(
                        "Unknown contact",
                        "NOT_FOUND",
                        "No conversation with this phone number.",
                        {"phone_number": "+254700000000"},
                        status=404,
                    )
                ],
            ),
            **COMMON_ERRORS,
        },
        tags=["history"],
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        contact = contact_get_by_phone(phone=data["phone_number"])
        messages, has_more = message_history(contact=contact, limit=data["limit"], before=data.get("before"))
        body = {
            "contact": {
                "id": contact.pk,
                "phone": contact.phone,
                "profile_name": contact.profile_name,
                "channel": contact.channel,
                "last_inbound_at": contact.last_inbound_at,
                "opted_out": contact.opted_out_at is not None,
            },
            "messages": messages,
            "has_more": has_more,
            "next_before": messages[-1].pk if has_more and messages else None,
        }
        return Response(self.OutputSerializer(body).data)


class MessageApi(ReadApiView):
    """One message: status, timestamps, error."""

    @extend_schema(
        operation_id="message_get",
        summary="One message and its status",
        responses={
            200: OpenApiResponse(
                MessageSerializer, examples=[OpenApiExample("A read template", value=MESSAGE_EXAMPLE)]
            ),
            404: OpenApiResponse(
                ErrorSerializer,
                examples=[error_example("Unknown", "NOT_FOUND", "No message with this id.", {"id": 5}, status=404)],
            ),
            **COMMON_ERRORS,
        },
        tags=["send"],
    )
    def get(self, request: Request, message_id: int) -> Response:
        return Response(MessageSerializer(message_get(message_id=message_id)).data)
