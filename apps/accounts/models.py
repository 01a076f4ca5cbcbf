from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiIdempotencyRecord(models.Model):
    """One `Idempotency-Key` a client used on the send API, and what it was used for.

    `message_key` (a UUID derived from the user and the client's key) is the outbound message's
    idempotency key; `request_hash` tells a retry of the same request from a reuse of the key for another one.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    client_key = models.CharField(max_length=255)
    message_key = models.UUIDField(unique=True)
    request_hash = models.CharField(max_length=64)
    message = models.ForeignKey(
        "interactions.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Two concurrent requests with one key: the second waits for the first and then sees its message.
            models.UniqueConstraint(fields=["user", "client_key"], name="api_idempotency_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.client_key}"
