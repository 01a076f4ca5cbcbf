"""The one interface every channel implements, and the typed values that cross it.

A channel verifies and parses its provider's webhooks into `InboundEvent` / `StatusEvent`, and sends an
`OutboundMessage`, answering a `SendResult` or raising `ChannelError`. Raw dicts never cross this boundary
(except `raw`, kept verbatim for the retention period).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


class MessageKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    DOCUMENT = "document"
    AUDIO = "audio"
    VIDEO = "video"
    STICKER = "sticker"
    BUTTON = "button"
    INTERACTIVE = "interactive"
    REACTION = "reaction"
    LOCATION = "location"
    TEMPLATE = "template"
    UNKNOWN = "unknown"


class DeliveryStatus(enum.StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class Media:
    """Inbound or outbound media. `provider_id` is what the provider's download route takes."""

    mime_type: str = ""
    provider_id: str = ""
    url: str = ""
    file_name: str = ""
    caption: str = ""


@dataclass(frozen=True)
class InboundEvent:
    channel: str
    provider_message_id: str
    # E.164 phone number when the provider gave one, else "".
    sender_phone: str
    # Business-scoped user id when the provider gave one, else "".
    sender_bsuid: str
    received_at: datetime
    kind: MessageKind = MessageKind.TEXT
    text: str = ""
    profile_name: str = ""
    # Our side: ACS channel registration id, Twilio number, Meta phone_number_id.
    recipient: str = ""
    media: Media | None = None
    # Button / list reply id or template quick-reply payload.
    payload: str = ""
    # Provider id of the message this one replies or reacts to.
    reply_to: str = ""
    latitude: float | None = None
    longitude: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def sender(self) -> str:
        return self.sender_phone or self.sender_bsuid


@dataclass(frozen=True)
class StatusEvent:
    channel: str
    provider_message_id: str
    status: DeliveryStatus
    occurred_at: datetime
    error_code: str = ""
    error_message: str = ""
    recipient: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TemplateParameter:
    name: str
    value: str


@dataclass(frozen=True)
class OutboundMessage:
    """What to send, to whom. `idempotency_key` is stable across retries of the same message."""

    to: str
    idempotency_key: str
    kind: MessageKind = MessageKind.TEXT
    text: str = ""
    template_name: str = ""
    template_language: str = ""
    # In the template's order; named templates (Meta) also send each name.
    template_parameters: tuple[TemplateParameter, ...] = ()
    template_named_parameters: bool = False
    # Provider-side reference of the template where the provider needs one (Twilio ContentSid).
    template_provider_ref: str = ""
    media: Media | None = None
    # Relay's outbound message id, for status callbacks that carry it back.
    outbound_id: int | None = None
    # When the row was first queued; stable across retries (ACS Repeatability-First-Sent).
    first_queued_at: datetime | None = None
    # Contact's phone or BSUID as given; `to` is what the provider should receive.
    contact_id: int | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str


class ChannelError(Exception):
    """A provider refused or failed a call.

    permanent: retrying the same call cannot succeed (bad recipient, template error, window closed).
    ambiguous: the request may have reached the provider (timeout after sending); resending could double it.
    retry_after: seconds the provider asked us to wait, when it said.
    """

    def __init__(
        self,
        message: str,
        code: str = "",
        *,
        permanent: bool = False,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent
        self.ambiguous = ambiguous
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message


# Provider error codes with a meaning the pipeline acts on.
WINDOW_CLOSED_CODES = frozenset({"131047", "63016", "470"})
MARKETING_OPT_OUT_CODES = frozenset({"131050"})


class SignatureError(Exception):
    """The request is not from the provider (bad or missing signature / secret) → 403."""


class MalformedPayload(Exception):
    """Authentic but unreadable request → 400."""


class Channel:
    """Base of every channel adapter. Subclasses set `name` and implement the methods they support."""

    name: ClassVar[str] = ""
    # Whether sending this channel's call twice is harmless (ACS dedupes on Repeatability-Request-ID).
    idempotent_send: ClassVar[bool] = False

    def enabled(self) -> bool:
        raise NotImplementedError

    def handshake(self, request: HttpRequest) -> HttpResponse | None:
        """Answer a provider's endpoint-validation request (Event Grid, CloudEvents OPTIONS, Meta GET).

        Called after `verify` for POSTs (the handshake carries the secret too) and before it for GET/OPTIONS.
        None when the request is an ordinary delivery.
        """
        return None

    def acknowledge(self, request: HttpRequest) -> HttpResponse:
        """The 200 answer once every item is persisted (Twilio wants empty TwiML, the others JSON)."""
        from django.http import JsonResponse

        return JsonResponse({"status": "accepted"})

    def verify(self, request: HttpRequest) -> None:
        """Raise SignatureError unless the request comes from the provider."""
        raise NotImplementedError

    def parse(self, request: HttpRequest) -> list[InboundEvent | StatusEvent]:
        """Every item of the delivery, in order. Raises MalformedPayload for an unreadable body.

        Items that are authentic but not understood are skipped (and logged), never fatal to the batch.
        """
        raise NotImplementedError

    def send(self, outbound: OutboundMessage) -> SendResult:
        raise NotImplementedError

    def download_media(self, media: Media) -> tuple[bytes, str]:
        """Fetch inbound media through the provider's authenticated route → (content, mime type)."""
        raise ChannelError(f"{self.name} cannot download media", "unsupported", permanent=True)

    def check_config(self) -> str:
        """Make one harmless authenticated call; return a short description or raise ChannelError."""
        raise ChannelError(f"{self.name} has no configuration check", "unsupported", permanent=True)
