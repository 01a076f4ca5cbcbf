"""Read-only admin for the conversation log: contacts, messages, interactions, statuses, webhook logs, and the
webhook deliveries still waiting for a worker.

Phone numbers are masked in lists; the detail page shows the full value to staff. Django escapes every value.
"""

from __future__ import annotations

from django.contrib import admin

from apps.core.phone import mask

from .models import Contact, InboundDelivery, Interaction, Message, StatusUpdate, WebhookLog


class ReadOnlyAdmin(admin.ModelAdmin):
    list_per_page = 50

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ("id", "masked_phone", "bsuid", "profile_name", "channel", "last_inbound_at", "opted_out_at")
    list_filter = ("channel", ("opted_out_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("phone", "bsuid", "profile_name")
    date_hierarchy = "created_at"

    @admin.display(description="phone", ordering="phone")
    def masked_phone(self, obj: Contact) -> str:
        return mask(obj.phone or "")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "direction",
        "channel",
        "contact_masked",
        "kind",
        "short_text",
        "template_name",
        "status",
        "created_at",
    )
    list_filter = ("direction", "channel", "status", "kind", "created_at")
    search_fields = (
        "text",
        "provider_message_id",
        "contact__phone",
        "contact__bsuid",
        "template_name",
        "idempotency_key",
    )
    date_hierarchy = "created_at"
    list_select_related = ("contact",)
    raw_id_fields = ("contact", "in_reply_to")

    @admin.display(description="contact")
    def contact_masked(self, obj: Message) -> str:
        return str(obj.contact)

    @admin.display(description="text")
    def short_text(self, obj: Message) -> str:
        return (obj.text or "")[:80]


@admin.register(Interaction)
class InteractionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "channel",
        "contact_masked",
        "route",
        "intent",
        "confidence",
        "template_name",
        "success",
        "processing_ms",
    )
    list_filter = ("route", "channel", "success", "intent_source", "created_at")
    search_fields = ("intent", "template_name", "message__text", "contact__phone", "message__provider_message_id")
    date_hierarchy = "created_at"
    list_select_related = ("contact",)
    raw_id_fields = ("message", "contact", "reply")

    @admin.display(description="contact")
    def contact_masked(self, obj: Interaction) -> str:
        return str(obj.contact)


@admin.register(StatusUpdate)
class StatusUpdateAdmin(ReadOnlyAdmin):
    list_display = ("id", "channel", "provider_message_id", "status", "error_code", "occurred_at", "message_id")
    list_filter = ("channel", "status", "occurred_at")
    search_fields = ("provider_message_id", "error_code")
    date_hierarchy = "occurred_at"
    raw_id_fields = ("message",)


@admin.register(WebhookLog)
class WebhookLogAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "channel", "method", "path", "status_code", "events", "duration_ms")
    list_filter = ("channel", "status_code", "method", "created_at")
    search_fields = ("path", "body", "error")
    date_hierarchy = "created_at"


@admin.register(InboundDelivery)
class InboundDeliveryAdmin(ReadOnlyAdmin):
    """Accepted webhook deliveries the worker has not yet stored as messages: empty while a worker runs; rows
    here mean the worker is down or behind (the sweeper re-enqueues them every SWEEPER_INTERVAL_SECONDS)."""

    list_display = ("id", "created_at", "channel", "masked_sender")
    list_filter = ("channel",)
    fields = ("channel", "masked_sender", "created_at", "delivery")
    readonly_fields = fields

    @admin.display(description="sender")
    def masked_sender(self, obj: InboundDelivery) -> str:
        return mask(obj.sender)
