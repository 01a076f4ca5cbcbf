"""Reads for the REST API: one contact's conversation, one message."""

from __future__ import annotations

from django.db.models import Prefetch, Q

from apps.core.exceptions import NotFoundError

from .models import Contact, Message, StatusUpdate


def contact_get_by_phone(*, phone: str) -> Contact:
    """The contact with this E.164 number. Raises NotFoundError."""
    contact = Contact.objects.filter(phone=phone).first()
    if contact is None:
        raise NotFoundError("No conversation with this phone number.", {"phone_number": phone})
    return contact


def _with_statuses(queryset):
    return queryset.prefetch_related(
        Prefetch("status_updates", queryset=StatusUpdate.objects.order_by("occurred_at", "id"))
    )


def message_history(*, contact: Contact, limit: int, before: int | None = None) -> tuple[list[Message], bool]:
    """Up to `limit` messages of `contact`, both directions, newest first, older than message `before`.

    Returns (messages, has_more). Raises NotFoundError when `before` is not a message of this contact.
    Ordered by (created_at, id) descending, so the cursor is stable while new messages arrive.
    """
    messages = Message.objects.filter(contact=contact)
    if before is not None:
        anchor = messages.filter(pk=before).values_list("created_at", flat=True).first()
        if anchor is None:
            raise NotFoundError("`before` is not a message of this conversation.", {"before": before})
        messages = messages.filter(Q(created_at__lt=anchor) | Q(created_at=anchor, pk__lt=before))
    rows = list(_with_statuses(messages.order_by("-created_at", "-id"))[: limit + 1])
    return rows[:limit], len(rows) > limit


def message_get(*, message_id: int) -> Message:
    """One message with its status events. Raises NotFoundError."""
    message = _with_statuses(Message.objects.select_related("contact")).filter(pk=message_id).first()
    if message is None:
        raise NotFoundError("No message with this id.", {"id": message_id})
    return message
