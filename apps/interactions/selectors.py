"""Reads of the conversation pipeline (querysets ready for views)."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Contact, Message


def contact_by_phone(*, phone: str) -> Contact | None:
    """The contact with this E.164 number, or None."""
    return Contact.objects.filter(phone=phone).first()


def conversation_messages(*, contact: Contact, after_id: int = 0, limit: int = 200) -> QuerySet[Message]:
    """Both directions of one contact's conversation, oldest first, with ids above `after_id`."""
    return Message.objects.filter(contact=contact, pk__gt=after_id).select_related("interaction").order_by("id")[:limit]
