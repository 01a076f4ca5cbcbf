"""The sandbox channel: a WhatsApp stand-in for local development (the /sandbox/ chat page, `manage.py chat`).

Same interface as the real channels, no network: `send()` answers a generated provider id and the message is
then reported delivered and read (`receipts_after_send`), so the chat shows statuses move. Inbound messages
come from the sandbox API (`POST /sandbox/api/messages/`), which is only served when SANDBOX_ENABLED.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from .base import Channel, DeliveryStatus, InboundEvent, MalformedPayload, OutboundMessage, SendResult, StatusEvent

if TYPE_CHECKING:
    from django.http import HttpRequest


class SandboxChannel(Channel):
    name = "sandbox"
    # Sending twice is harmless: nothing leaves the process.
    idempotent_send = True

    def enabled(self) -> bool:
        return bool(settings.SANDBOX_ENABLED)

    def verify(self, request: HttpRequest) -> None:
        # The sandbox endpoints are only routed when SANDBOX_ENABLED (development); there is no provider to
        # authenticate.
        return None

    def parse(self, request: HttpRequest) -> list[InboundEvent | StatusEvent]:
        """One chat message: JSON {"phone", "text", "name"?}."""
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise MalformedPayload(f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise MalformedPayload("body must be a JSON object")
        phone, text = str(body.get("phone") or "").strip(), str(body.get("text") or "")
        if not phone:
            raise MalformedPayload("phone is required")
        if not text.strip():
            raise MalformedPayload("text is required")
        return [self.inbound_event(phone=phone, text=text, name=str(body.get("name") or ""))]

    def inbound_event(self, *, phone: str, text: str, name: str = "") -> InboundEvent:
        return InboundEvent(
            channel=self.name,
            provider_message_id=f"sandbox-in-{uuid.uuid4()}",
            sender_phone=phone,
            sender_bsuid="",
            received_at=timezone.now(),
            text=text[:4096],
            profile_name=name[:200],
            recipient="sandbox",
            raw={"phone": phone, "text": text, "name": name},
        )

    def send(self, outbound: OutboundMessage) -> SendResult:
        # Derived from the idempotency key, so a resend of the same message gets the same id (like ACS).
        return SendResult(provider_message_id=f"sandbox-out-{outbound.idempotency_key or uuid.uuid4()}")

    def receipts_after_send(self, result: SendResult) -> list[StatusEvent]:
        """The statuses a phone would report right after a send: delivered, then read."""
        now = timezone.now()
        return [
            StatusEvent(
                channel=self.name, provider_message_id=result.provider_message_id, status=status, occurred_at=now
            )
            for status in (DeliveryStatus.DELIVERED, DeliveryStatus.READ)
        ]

    def check_config(self) -> str:
        return "sandbox channel (no provider)"
