from __future__ import annotations

import base64
import csv
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Q
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import Interaction
from ..statistics.selectors import interactions_filter
from .base import COMMON_ERRORS, ReadApiView, bad_request, error_example
from .params import RangeFiltersParams

# The columns of a CSV export, and the fields of each row of a JSON page.
CSV_COLUMNS = [
    "id",
    "created_at",
    "channel",
    "contact_phone",
    "text",
    "intent",
    "confidence",
    "intent_source",
    "route",
    "template_name",
    "success",
    "error",
    "processing_ms",
    "reply_id",
    "reply_status",
    "reply_error_code",
]
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection: prefix a quote)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _row(interaction: Interaction) -> list[str]:
    reply = interaction.reply
    values = [
        interaction.pk,
        interaction.created_at.isoformat(),
        interaction.channel,
        interaction.contact.phone or interaction.contact.bsuid,
        interaction.message.text,
        interaction.intent,
        interaction.confidence,
        interaction.intent_source,
        interaction.route,
        interaction.template_name,
        interaction.success,
        interaction.error,
        interaction.processing_ms,
        reply.pk if reply else "",
        reply.status if reply else "",
        reply.error_code if reply else "",
    ]
    return [csv_cell(v) for v in values]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_stream(queryset) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for interaction in queryset.iterator(chunk_size=2000):
        yield writer.writerow(_row(interaction))


def _cursor_encode(interaction: Interaction) -> str:
    raw = f"{interaction.created_at.isoformat()}|{interaction.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, pk = raw.split("|")
        return datetime.fromisoformat(moment), int(pk)
    except (ValueError, UnicodeDecodeError) as exc:
        raise serializers.ValidationError({"cursor": ["Not a cursor returned by this endpoint."]}) from exc


class CsvRenderer(BaseRenderer):
    """Lets `?format=csv` through content negotiation; the view streams the body itself."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class InteractionsApi(ReadApiView):
    """The decision log, filtered like the statistics: JSON pages, or every row as streamed CSV."""

    renderer_classes = [JSONRenderer, CsvRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors (400, 401, 429 …) are JSON in the one error shape even when CSV was asked for.
        if isinstance(response, Response):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    class InputSerializer(RangeFiltersParams):
        limit = serializers.IntegerField(min_value=1, max_value=1000, default=100, required=False)
        cursor = serializers.CharField(required=False, help_text="`next_cursor` of the previous page.")
        format = serializers.ChoiceField(
            choices=["json", "csv"], required=False, default="json", help_text="csv streams every matching row."
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "InteractionsPage"

        class InteractionSerializer(serializers.ModelSerializer):
            contact_phone = serializers.CharField(source="contact.phone", allow_null=True)
            text = serializers.CharField(source="message.text")
            reply_id = serializers.IntegerField(source="reply.pk", allow_null=True, default=None)
            reply_status = serializers.CharField(source="reply.status", allow_null=True, default=None)
            reply_error_code = serializers.CharField(source="reply.error_code", allow_null=True, default=None)

            class Meta:
                model = Interaction
                fields = CSV_COLUMNS  # a JSON page and a CSV export carry the same columns

        results = InteractionSerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="interactions_list",
        summary="Interactions (decision log)",
        description=(
            "Newest first, cursor-paginated. `format=csv` streams every matching row as CSV (cells starting with "
            "= + - @ are prefixed with ' so spreadsheets do not evaluate them)."
        ),
        parameters=[InputSerializer],
        responses={
            (200, "application/json"): OpenApiResponse(
                OutputSerializer,
                examples=[
                    OpenApiExample(
                        "A page",
                        value={
                            "results": [
                                {
                                    "id": 311,
                                    "created_at": "2026-12-01T09:30:00.910000Z",
                                    "channel": "acs",
                                    "contact_phone": "+254712345678",
                                    "text": "quiero reservar kayak mañana",
                                    "intent": "booking",
                                    "confidence": 0.92,
                                    "intent_source": "keyword",
                                    "route": "template",
                                    "template_name": "booking_options",
                                    "success": True,
                                    "error": "",
                                    "processing_ms": 184,
                                    "reply_id": 912,
                                    "reply_status": "read",
                                    "reply_error_code": "",
                                }
                            ],
                            "next_cursor": "MjAyNi0xMi0wMVQwOTozMDowMC45MTAwMDArMDA6MDB8MzEx",
                        },
                        response_only=True,
                    )
                ],
            ),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="Every matching row, streamed."),
            **bad_request(
                error_example(
                    "Bad cursor",
                    "VALIDATION_ERROR",
                    "Invalid input.",
                    {"fields": {"cursor": ["Not a cursor returned by this endpoint."]}},
                )
            ),
            **COMMON_ERRORS,
        },
        tags=["statistics"],
    )
    def get(self, request: Request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        queryset = interactions_filter(query=params.to_query())
        if data["format"] == "csv":
            response = StreamingHttpResponse(_csv_stream(queryset), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="interactions.csv"'
            return response
        if data.get("cursor"):
            moment, pk = _cursor_decode(data["cursor"])
            queryset = queryset.filter(Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=pk))
        rows = list(queryset[: data["limit"] + 1])
        page = rows[: data["limit"]]
        body = {"results": page, "next_cursor": _cursor_encode(page[-1]) if len(rows) > len(page) else None}
        return Response(self.OutputSerializer(body).data)
