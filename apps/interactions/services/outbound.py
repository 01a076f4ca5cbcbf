"""Outbound messages: create them (window, opt-out, template validation, idempotency). Delivering them is
`delivery.py`."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from apps.channels.base import MessageKind
from apps.core.exceptions import ApplicationError

from ..exceptions import IdempotencyKeyReused, OptedOutError, WindowClosedError
from ..models import Contact, Direction, Message, MessageStatus
from .enqueue import delivery_on_commit
from .hot_sql import key_holder, message_insert_unless_key_taken

if TYPE_CHECKING:
    from apps.message_templates.models import WhatsAppTemplate

logger = logging.getLogger(__name__)

MEDIA_KINDS = frozenset({"image", "document", "audio", "video"})
# Fixed namespace: the same inputs give the same key in every process and release.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c9a52-3d0e-4a7b-9f41-2c8e5b7d9a10")


# --- keys and checks ------------------------------------------------------------------------------------


def idempotency_key_normalize(key: str) -> str:
    """Any client key as a UUID string (ACS sends it as Repeatability-Request-ID, which must be a UUID)."""
    try:
        return str(uuid.UUID(str(key)))
    except ValueError:
        return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"client:{key}"))


def reply_idempotency_key(*, inbound: Message, index: int = 0) -> str:
    """The key of the `index`-th reply to `inbound`: the same on every retry of its processing."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"reply:{inbound.pk}:{index}"))


def _default_key(in_reply_to: Message | None, content: dict) -> str:
    if in_reply_to is None:
        # Nothing stable to derive it from: callers that retry pass their own key.
        return str(uuid.uuid4())
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"reply:{in_reply_to.pk}:{digest}"))


def conversation_window_open(*, contact: Contact) -> bool:
    """Whether free-form messages may go to `contact`: within 24 h of their last inbound message."""
    if contact.last_inbound_at is None:
        return False
    window = timedelta(hours=settings.CONVERSATION_WINDOW_HOURS)
    return timezone.now() - contact.last_inbound_at < window


def _window_require(contact: Contact) -> None:
    if not conversation_window_open(contact=contact):
        last = contact.last_inbound_at.isoformat() if contact.last_inbound_at else None
        raise WindowClosedError(
            "The 24-hour customer service window is closed: only an approved template can be sent.",
            {"template": settings.FALLBACK_TEMPLATE_NAME, "last_inbound_at": last},
        )


def _not_opted_out(contact: Contact) -> None:
    if contact.opted_out_at is not None:
        raise OptedOutError(
            "The contact opted out (STOP) and receives no messages until they send START.",
            {"opted_out_at": contact.opted_out_at.isoformat()},
        )


def _existing(key: str, contact: Contact) -> Message | None:
    # Nearly always there is none: a narrow query says so, and the whole row is read only when there is one.
    found = key_holder(key)
    if found is None:
        return None
    if found[1] != contact.pk:
        raise IdempotencyKeyReused("This idempotency key was already used for another contact.", {"key": key})
    return Message.objects.filter(pk=found[0]).first()


def _insert(
    *,
    contact: Contact,
    channel: str | None,
    key: str,
    in_reply_to: Message | None,
    template: WhatsAppTemplate | None = None,
    **fields,
) -> Message:
    """Insert the queued row and hand it to delivery on commit; a row already holding `key` is returned instead.

    Runs in the caller's transaction or, without one, as a statement of its own: the row is the only write.
    """
    channel = channel or contact.channel or settings.DEFAULT_CHANNEL
    now = timezone.now()
    message = Message(
        contact=contact,
        direction=Direction.OUTBOUND,
        channel=channel,
        status=MessageStatus.QUEUED,
        idempotency_key=key,
        in_reply_to=in_reply_to,
        received_at=now,
        created_at=now,
        updated_at=now,
        **fields,
    )
    if not message_insert_unless_key_taken(message):
        # A concurrent create with the same key won: return its row, never a second message.
        existing = _existing(key, contact)
        if existing is None:
            raise IntegrityError(f"idempotency key {key} is taken but no row holds it")
        return existing
    delivery_on_commit(message, template=template)
    return message


# --- create -----------------------------------------------------------------------------------------------


def outbound_text_create(
    *,
    contact: Contact,
    text: str,
    channel: str | None = None,
    in_reply_to: Message | None = None,
    idempotency_key: str | None = None,
) -> Message:
    """Queue a free-form text to `contact`; delivery is enqueued on commit.

    Raises WindowClosedError outside the 24-hour window (its extra names the template to send instead) and
    OptedOutError for an opted-out contact. The same idempotency key returns the existing row.
    """
    key = idempotency_key_normalize(idempotency_key) if idempotency_key else _default_key(in_reply_to, {"text": text})
    if (existing := _existing(key, contact)) is not None:
        return existing
    _not_opted_out(contact)
    _window_require(contact)
    if not text.strip():
        raise ApplicationError("An outbound text cannot be empty.", code="EMPTY_TEXT")
    return _insert(contact=contact, channel=channel, key=key, in_reply_to=in_reply_to, kind="text", text=text)


def outbound_template_create(
    *,
    contact: Contact,
    template: WhatsAppTemplate,
    values: dict[str, str],
    channel: str | None = None,
    in_reply_to: Message | None = None,
    idempotency_key: str | None = None,
) -> Message:
    """Queue an approved template with `values`; templates may go outside the 24-hour window.

    Raises TemplateValidationError (from template_render: count, names, empty values, newlines, length,
    status, language) and OptedOutError for a marketing template to a contact who opted out.
    """
    from apps.message_templates.models import TemplateCategory
    from apps.message_templates.services import template_render

    content = {"template": template.name, "language": template.language, "values": values}
    key = idempotency_key_normalize(idempotency_key) if idempotency_key else _default_key(in_reply_to, content)
    if (existing := _existing(key, contact)) is not None:
        return existing
    if template.category == TemplateCategory.MARKETING and (contact.opted_out_at or contact.marketing_opted_out_at):
        raise OptedOutError(
            "The contact opted out of marketing messages.", {"template": template.name, "category": "marketing"}
        )
    rendered = template_render(template=template, values=values)
    return _insert(
        contact=contact,
        channel=channel,
        key=key,
        in_reply_to=in_reply_to,
        template=template,
        kind="template",
        text=rendered.text,
        template_name=template.name,
        template_language=template.language,
        template_parameters=[[name, value] for name, value in rendered.parameters],
    )


def outbound_media_create(
    *,
    contact: Contact,
    media_url: str,
    kind: str,
    caption: str = "",
    file_name: str = "",
    channel: str | None = None,
    in_reply_to: Message | None = None,
    idempotency_key: str | None = None,
) -> Message:
    """Queue an image / document / audio / video by public URL. Free-form: the 24-hour window applies.

    Raises ApplicationError (UNSUPPORTED_MEDIA_KIND) for another kind, WindowClosedError, OptedOutError.
    """
    if kind not in MEDIA_KINDS:
        raise ApplicationError(
            f"Not a media kind: {kind!r}.", {"allowed": sorted(MEDIA_KINDS)}, code="UNSUPPORTED_MEDIA_KIND"
        )
    kind = MessageKind(kind)
    content = {"media_url": media_url, "kind": str(kind), "caption": caption, "file_name": file_name}
    key = idempotency_key_normalize(idempotency_key) if idempotency_key else _default_key(in_reply_to, content)
    if (existing := _existing(key, contact)) is not None:
        return existing
    _not_opted_out(contact)
    _window_require(contact)
    return _insert(
        contact=contact,
        channel=channel,
        key=key,
        in_reply_to=in_reply_to,
        kind=str(kind),
        text=caption,
        media={"url": media_url, "file_name": file_name, "caption": caption},
    )
