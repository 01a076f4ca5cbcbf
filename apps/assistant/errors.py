"""The two ways a model call fails, as the ai_answer actor needs to know them."""

from __future__ import annotations


class AITransientError(Exception):
    """Worth retrying (429, 5xx, timeouts, connection errors). `retry_after` is the provider's hint, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class AIPermanentError(Exception):
    """Retrying will not help (bad request, bad credentials, unknown model, no AI configured)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status
