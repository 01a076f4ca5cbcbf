"""What every REST API view shares: token (then session) auth, group permissions, per-client throttling."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.views import APIView

from apps.accounts.permissions import IsAnalyst, IsIntegrator
from apps.accounts.throttling import ApiClientThrottle


class ReadApiView(APIView):
    """Analysts and integrators (and staff)."""

    permission_classes = [IsAnalyst]
    throttle_classes = [ApiClientThrottle]


class WriteApiView(APIView):
    """Integrators (and staff)."""

    permission_classes = [IsIntegrator]
    throttle_classes = [ApiClientThrottle]


ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)


def error_example(name: str, code: str, message: str, details: dict | None = None, status: int = 400):
    return OpenApiExample(
        name,
        value={"error": {"code": code, "message": message, "details": details or {}}},
        response_only=True,
        status_codes=[str(status)],
    )


COMMON_ERRORS = {
    401: OpenApiResponse(
        ErrorSerializer,
        description="No or bad credentials.",
        examples=[
            error_example(
                "Not authenticated", "NOT_AUTHENTICATED", "Authentication credentials were not provided.", status=401
            )
        ],
    ),
    403: OpenApiResponse(
        ErrorSerializer,
        description="Authenticated, but not in a group allowed to call this.",
        examples=[
            error_example(
                "Permission denied",
                "PERMISSION_DENIED",
                "Reading the API needs the analysts or integrators group.",
                status=403,
            )
        ],
    ),
    429: OpenApiResponse(
        ErrorSerializer,
        description="Too many requests for this client; see Retry-After.",
        examples=[
            error_example(
                "Rate limited",
                "RATE_LIMIT_EXCEEDED",
                "Rate limit exceeded. Retry in 12 seconds.",
                {"limit": 600, "window": 60, "retry_after": 12},
                status=429,
            )
        ],
    ),
}


def bad_request(*examples: OpenApiExample) -> dict:
    return {400: OpenApiResponse(ErrorSerializer, description="Invalid parameters.", examples=list(examples))}
