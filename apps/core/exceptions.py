"""One error family for Relay and the one JSON shape every API error takes.

`{"error": {"code": "...", "message": "...", "details": {...}}}`
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A business error with a stable code; mapped to HTTP by `api_exception_handler`."""

    code = "APPLICATION_ERROR"
    http_status: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, extra: dict[str, Any] | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if code:
            self.code = code


class NotFoundError(ApplicationError):
    code = "NOT_FOUND"
    http_status = status.HTTP_404_NOT_FOUND


class ConflictError(ApplicationError):
    code = "CONFLICT"
    http_status = status.HTTP_409_CONFLICT


class ServiceUnavailableError(ApplicationError):
    code = "SERVICE_UNAVAILABLE"
    http_status = status.HTTP_503_SERVICE_UNAVAILABLE


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


_DRF_CODES = {
    drf_exceptions.NotAuthenticated: "NOT_AUTHENTICATED",
    drf_exceptions.AuthenticationFailed: "AUTHENTICATION_FAILED",
    drf_exceptions.PermissionDenied: "PERMISSION_DENIED",
    drf_exceptions.NotFound: "NOT_FOUND",
    drf_exceptions.MethodNotAllowed: "METHOD_NOT_ALLOWED",
    drf_exceptions.NotAcceptable: "NOT_ACCEPTABLE",
    drf_exceptions.UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
    drf_exceptions.ParseError: "MALFORMED_REQUEST",
    drf_exceptions.ValidationError: "VALIDATION_ERROR",
    drf_exceptions.Throttled: "RATE_LIMIT_EXCEEDED",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every error leaves in the one shape."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.extra), status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(detail={"non_field_errors": exc.messages})
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "ERROR")
    if isinstance(exc, drf_exceptions.ValidationError):
        message, details = "Invalid input.", {"fields": response.data}
    elif isinstance(exc, drf_exceptions.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        view = context.get("view")
        limit, window = _throttle_rate(view)
        message = f"Rate limit exceeded. Retry in {wait} seconds."
        details = {"limit": limit, "window": window, "retry_after": wait}
        response["Retry-After"] = str(wait)
    else:
        message = str(getattr(exc, "detail", exc))
        details = {}
    response.data = error_body(code, message, details)
    return response


def _throttle_rate(view: Any) -> tuple[int | None, int | None]:
    for throttle in getattr(view, "get_throttles", lambda: [])():
        num, duration = getattr(throttle, "num_requests", None), getattr(throttle, "duration", None)
        if num:
            return num, duration
    return None, None
