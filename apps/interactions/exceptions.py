"""Errors the pipeline raises to its callers (send API, flows). All are ApplicationError subclasses."""

from __future__ import annotations

from apps.core.exceptions import ConflictError


class WindowClosedError(ConflictError):
    """Free-form content outside the 24-hour customer service window.

    `extra["template"]` names the template to send instead (settings.FALLBACK_TEMPLATE_NAME).
    """

    code = "WINDOW_CLOSED"


class OptedOutError(ConflictError):
    """The contact opted out (STOP, or the provider reported a marketing opt-out)."""

    code = "OPTED_OUT"


class IdempotencyKeyReused(ConflictError):
    """The idempotency key already names a message for another contact."""

    code = "IDEMPOTENCY_KEY_REUSED"


class AIRetryLater(Exception):
    """The AI provider failed transiently; the ai_answer actor retries after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after
