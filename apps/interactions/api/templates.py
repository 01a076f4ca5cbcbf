from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.services import template_values_from
from apps.message_templates.exceptions import TemplateValidationError
from apps.message_templates.models import TemplateCategory, TemplateStatus, WhatsAppTemplate
from apps.message_templates.services import template_get, template_render

from .base import COMMON_ERRORS, ErrorSerializer, ReadApiView, WriteApiView, bad_request, error_example


def templates_list(*, category: str = "", active_only: bool = False):
    """Templates by name and language; `active_only` keeps the active, approved ones (those Relay may send)."""
    templates = WhatsAppTemplate.objects.all().order_by("name", "language")
    if category:
        templates = templates.filter(category=category)
    if active_only:
        templates = templates.filter(active=True, status=TemplateStatus.APPROVED)
    return templates


class ParametersField(serializers.JSONField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict | list):
            raise serializers.ValidationError("Give an object (name → value) or a list in the template's order.")
        return data


TEMPLATE_EXAMPLE = {
    "name": "booking_confirmation",
    "language": "es",
    "category": "utility",
    "status": "approved",
    "active": True,
    "parameters": ["name", "activity", "date"],
    "body_text": "Hola {{name}}, tu reserva de {{activity}} es el {{date}}.",
    "header_text": "",
    "footer_text": "",
}


class TemplatesApi(ReadApiView):
    class InputSerializer(serializers.Serializer):
        category = serializers.ChoiceField(choices=TemplateCategory.choices, required=False)
        active_only = serializers.BooleanField(required=False, default=False)

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = WhatsAppTemplate
            ref_name = "Template"
            fields = [
                "name",
                "language",
                "category",
                "status",
                "active",
                "parameters",
                "body_text",
                "header_text",
                "footer_text",
            ]

    @extend_schema(
        operation_id="templates_list",
        summary="WhatsApp templates",
        parameters=[InputSerializer],
        responses={
            200: OpenApiResponse(
                OutputSerializer(many=True),
                examples=[OpenApiExample("One template", value=[TEMPLATE_EXAMPLE], response_only=True)],
            ),
            **bad_request(
                error_example(
                    "Unknown category",
                    "VALIDATION_ERROR",
                    "Invalid input.",
                    {"fields": {"category": ['"promo" is not a valid choice.']}},
                )
            ),
            **COMMON_ERRORS,
        },
        tags=["templates"],
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        templates = templates_list(
            category=params.validated_data.get("category", ""), active_only=params.validated_data["active_only"]
        )
        return Response(self.OutputSerializer(templates, many=True).data)


class TemplateTestApi(WriteApiView):
    """Render a template with parameters and report every validation problem, without sending anything."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TemplateTestInput"

        template_name = serializers.CharField(max_length=512)
        parameters = ParametersField(required=False, default=dict)
        language = serializers.CharField(max_length=15, required=False, default="")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TemplateTestOutput"

        valid = serializers.BooleanField()
        template_name = serializers.CharField()
        language = serializers.CharField()
        rendered_text = serializers.CharField(allow_null=True)
        parameters = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
        # A field named like Serializer.errors: DRF's metaclass moves declared fields off the class, so the
        # property is untouched at runtime; the stubs cannot know that.
        errors = serializers.ListField(child=serializers.CharField())  # type: ignore[assignment]

    @extend_schema(
        operation_id="templates_test",
        summary="Test-render a template",
        request=InputSerializer,
        examples=[
            OpenApiExample(
                "By name",
                value={
                    "template_name": "booking_confirmation",
                    "parameters": {"name": "Ana", "activity": "kayak", "date": "3 de diciembre"},
                    "language": "es",
                },
                request_only=True,
            )
        ],
        responses={
            200: OpenApiResponse(
                OutputSerializer,
                description="Rendered (valid) or the list of problems (valid: false).",
                examples=[
                    OpenApiExample(
                        "Valid",
                        value={
                            "valid": True,
                            "template_name": "booking_confirmation",
                            "language": "es",
                            "rendered_text": "Hola Ana, tu reserva de kayak es el 3 de diciembre.",
                            "parameters": [["name", "Ana"], ["activity", "kayak"], ["date", "3 de diciembre"]],
                            "errors": [],
                        },
                        response_only=True,
                    ),
                    OpenApiExample(
                        "Invalid",
                        value={
                            "valid": False,
                            "template_name": "booking_confirmation",
                            "language": "es",
                            "rendered_text": None,
                            "parameters": [],
                            "errors": ["Missing value for parameter 'date'.", "Parameter 'name' is empty."],
                        },
                        response_only=True,
                    ),
                ],
            ),
            **bad_request(
                error_example(
                    "Missing name",
                    "VALIDATION_ERROR",
                    "Invalid input.",
                    {"fields": {"template_name": ["This field is required."]}},
                )
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
            **COMMON_ERRORS,
        },
        tags=["templates"],
    )
    def post(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        template = template_get(name=data["template_name"], language=data["language"])
        body: dict[str, Any] = {"template_name": template.name, "language": template.language}
        try:
            rendered = template_render(template=template, values=template_values_from(template, data["parameters"]))
        except TemplateValidationError as exc:
            body.update(valid=False, rendered_text=None, parameters=[], errors=exc.errors)
        else:
            body.update(
                valid=True,
                rendered_text=rendered.text,
                parameters=[list(pair) for pair in rendered.parameters],
                errors=[],
            )
        return Response(self.OutputSerializer(body).data)
