from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Channel(models.TextChoices):
    ACS = "acs", "Azure Communication Services"
    TWILIO = "twilio", "Twilio"
    META = "meta", "Meta Cloud API"
    SANDBOX = "sandbox", "Sandbox"


class Contact(models.Model):
    """A WhatsApp user, keyed on the E.164 phone number or, when the provider hides it, the BSUID."""

    phone = models.CharField(max_length=20, null=True, blank=True)
    bsuid = models.CharField(max_length=80, null=True, blank=True)
    profile_name = models.CharField(max_length=200, blank=True)
    # The channel the contact last wrote from: replies and unsolicited sends go back on it.
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.ACS)
    language = models.CharField(max_length=15, blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    # The provider refused a marketing template because the user stopped marketing messages (Meta 131050).
    marketing_opted_out_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["phone"], condition=Q(phone__isnull=False), name="contact_unique_phone"),
            models.UniqueConstraint(fields=["bsuid"], condition=Q(bsuid__isnull=False), name="contact_unique_bsuid"),
            models.CheckConstraint(
                condition=Q(phone__isnull=False) | Q(bsuid__isnull=False), name="contact_has_an_address"
            ),
        ]

    def __str__(self) -> str:
        from apps.core.phone import mask

        return mask(self.phone) if self.phone else (self.bsuid or "")

    @property
    def address(self) -> str:
        """Where to send: the phone number, or the BSUID when that is all we have."""
        return self.phone or self.bsuid or ""


class Direction(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Outbound"


class MessageStatus(models.TextChoices):
    # Inbound
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    # Outbound, in the order they may advance (see STATUS_RANK)
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    UNKNOWN = "unknown", "Unknown (ambiguous send)"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"


class Message(models.Model):
    # Indexed by message_contact_created (contact first): a second index on contact alone only slowed inserts.
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="messages", db_index=False)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    provider_message_id = models.CharField(max_length=200, null=True, blank=True)
    kind = models.CharField(max_length=20, default="text")
    text = models.TextField(blank=True)
    payload = models.CharField(max_length=500, blank=True)
    # {"mime_type", "provider_id", "url", "file_name", "caption", "size", "stored_path", "error"}
    media = models.JSONField(default=dict, blank=True)
    template_name = models.CharField(max_length=512, blank=True)
    template_language = models.CharField(max_length=15, blank=True)
    template_parameters = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=12, choices=MessageStatus.choices)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    # Outbound only: stable across retries; ACS receives it as Repeatability-Request-ID.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the current run of send attempts began; ACS receives it as Repeatability-First-Sent and only
    # tracks a repeatability id for 5 minutes after it.
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    in_reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies", db_index=False
    )
    raw_payload = models.JSONField(default=dict, blank=True)
    # The provider's time for inbound; our enqueue time for outbound.
    received_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # The last line of defence against duplicate deliveries (providers retry for up to 24 h).
            models.UniqueConstraint(
                fields=["channel", "provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="message_unique_provider_id",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"], condition=Q(idempotency_key__isnull=False), name="message_unique_idem_key"
            ),
        ]
        indexes = [
            # History of one contact, newest first (history API, conversation context).
            models.Index(fields=["contact", "-created_at"], name="message_contact_created"),
            # The sweeper: inbound rows still waiting to be processed.
            models.Index(fields=["created_at"], condition=Q(status="received"), name="message_inbound_pending"),
            # Replies to a message (outbound rows only: inbound rows, half the table, have none).
            models.Index(fields=["in_reply_to"], condition=Q(in_reply_to__isnull=False), name="message_in_reply_to"),
            # The sweeper: outbound rows still waiting to be sent.
            models.Index(
                fields=["created_at"], condition=Q(status__in=["queued", "sending"]), name="message_outbound_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.channel} #{self.pk} {self.status}"


class StatusUpdate(models.Model):
    """Every status event a provider reported, kept even before the outbound row knows its provider id.

    `status_apply` replays them onto the message, so an early receipt is not lost.
    """

    channel = models.CharField(max_length=10, choices=Channel.choices)
    provider_message_id = models.CharField(max_length=200)
    status = models.CharField(max_length=12)
    occurred_at = models.DateTimeField()
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="status_updates")
    raw_payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # A status event delivered twice is recorded once.
            models.UniqueConstraint(fields=["channel", "provider_message_id", "status"], name="status_update_unique"),
        ]
        indexes = [
            # Replaying early receipts when an outbound row learns its provider id.
            models.Index(fields=["channel", "provider_message_id"], name="status_update_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.provider_message_id} {self.status}"


class Route(models.TextChoices):
    TEMPLATE = "template", "Template"
    AI = "ai", "AI"
    FLOW = "flow", "Flow"
    BLOCKED = "blocked", "Blocked (not allowed)"
    RATE_LIMITED = "rate_limited", "Rate limited"
    OPTED_OUT = "opted_out", "Opted out"
    UNMATCHED = "unmatched", "Unmatched"
    IGNORED = "ignored", "Ignored"


class Interaction(models.Model):
    """The decision log of one inbound message."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="interaction")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="interactions")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    intent = models.CharField(max_length=100, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    # "keyword" | "ai" | "" — who chose the intent.
    intent_source = models.CharField(max_length=20, blank=True)
    entity = models.CharField(max_length=200, blank=True)
    route = models.CharField(max_length=20, choices=Route.choices)
    template_name = models.CharField(max_length=512, blank=True)
    reply = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    processing_ms = models.PositiveIntegerField(default=0)
    success = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    # Parameters used, flow state, AI details (provider, model, tokens, chunk ids) and anything else worth keeping.
    context = models.JSONField(default=dict, blank=True)
    ai_provider = models.CharField(max_length=40, blank=True)
    ai_model = models.CharField(max_length=100, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # Statistics and the interactions API filter on time first.
            models.Index(fields=["created_at"], name="interaction_created"),
            models.Index(fields=["contact", "-created_at"], name="interaction_contact_created"),
            # The sweeper's search for AI answers that never came (maintenance.ai_answers_give_up).
            models.Index(fields=["created_at"], name="interaction_unanswered", condition=Q(reply__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.route} {self.intent}"


class WebhookLog(models.Model):
    channel = models.CharField(max_length=10, choices=Channel.choices)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    # Authorization, signatures and secrets are redacted before saving.
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    status_code = models.PositiveSmallIntegerField()
    duration_ms = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status_code}"


class InboundDelivery(models.Model):
    """One inbound message as the webhook stored it: verified and parsed, not yet a contact and a message.

    The webhook's 2xx follows this row's commit (one INSERT); the worker turns it into the contact, message and
    WebhookLog rows (services/deferred.py) and deletes it, so the table holds only what waits for a worker.
    """

    channel = models.CharField(max_length=10, choices=Channel.choices)
    # E.164 phone number, else the BSUID: one sender's deliveries become messages in arrival (id) order.
    sender = models.CharField(max_length=200)
    # JSON: {"event": the InboundEvent's fields, "log": the WebhookLog row's fields}.
    delivery = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["sender", "id"], name="inbound_delivery_sender")]
        verbose_name_plural = "inbound deliveries"

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel} delivery waiting for the worker"


from .models_statistics import *  # noqa: E402, F403  (rollup models live in their own module)
