"""Errors of the templates app; both belong to the one `ApplicationError` family."""

from __future__ import annotations

from apps.core.exceptions import ApplicationError


class TemplateValidationError(ApplicationError):
    """A template cannot be sent with these values (DESIGN invariant 5).

    `.errors` lists every problem, one precise message each (also in `extra["errors"]`).
    """

    code = "TEMPLATE_INVALID"

    def __init__(self, message: str, *, errors: list[str], extra: dict | None = None):
        self.errors = list(errors)
        super().__init__(message, {**(extra or {}), "errors": self.errors})


class DataSourceError(ApplicationError):
    """A data source could not produce its row: bad query, timeout, database error, unknown resolver."""

    code = "DATASOURCE_ERROR"
