"""The inbound pipeline: one contact's messages, one at a time, in arrival order, each to exactly one decision.

    opt-out / opt-in words → allow-list → opted out? → rate limit → flows → intent → template → values →
    validate → outbound template; no (confident) match, voice notes, images, PDFs → the AI seam (its own actor).

Every inbound message gets exactly one Interaction row, the log of that decision.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.channels.base import MessageKind
from apps.core.locks import advisory_lock
from apps.core.phone import InvalidPhoneNumber, mask, phone_normalize
from apps.core.ratelimit import rate_hit

from ..exceptions import OptedOutError, WindowClosedError
from ..flows import flows_registered
from ..models import Contact, Direction, Interaction, Message, MessageStatus, Route
from .contacts import contact_opt_in, contact_opt_out
from .enqueue import enqueue_on_commit
from .hot_sql import (
    inbound_claim,
    inbound_waiting,
    inbound_waiting_query,
    interaction_insert,
    message_state,
)
from .media import inbound_media_download
from .outbound import outbound_template_create, outbound_text_create, reply_idempotency_key
from .texts import text_for

logger = logging.getLogger(__name__)

# The whole message, after trimming, upper-casing and dropping accents and punctuation.
OPT_OUT_WORDS = {
    "STOP": "en",
    "UNSUBSCRIBE": "en",
    "PARAR": "es",
    "BAJA": "es",
    "ALTO": "es",
    "CANCELAR": "es",
    "DETENER": "es",
    "ARRET": "fr",
}
OPT_IN_WORDS = {"START": "en", "SUBSCRIBE": "en", "INICIAR": "es", "ALTA": "es"}
# Kinds the keyword matcher cannot read: the AI seam looks at them (transcription, vision, PDF text).
AI_MEDIA_KINDS = {MessageKind.AUDIO, MessageKind.IMAGE, MessageKind.DOCUMENT}
DOWNLOADED_KINDS = {MessageKind.AUDIO, MessageKind.IMAGE, MessageKind.DOCUMENT, MessageKind.VIDEO, MessageKind.STICKER}


def command_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text or "")
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return "".join(ch for ch in folded.upper() if ch.isalnum())


def _allowed_numbers() -> set[str]:
    """settings.ALLOWED_PHONE_NUMBERS as E.164 (an entry written without "+" still counts)."""
    allowed = set()
    for raw in settings.ALLOWED_PHONE_NUMBERS:
        try:
            allowed.add(phone_normalize(raw))
        except InvalidPhoneNumber:
            logger.warning("ALLOWED_PHONE_NUMBERS has an unusable entry %s", mask(raw))
    return allowed


@dataclass
class Decision:
    route: str
    reply: Message | None = None
    intent: str = ""
    confidence: float | None = None
    intent_source: str = ""
    entity: str = ""
    template_name: str = ""
    success: bool = True
    error: str = ""
    context: dict[str, Any] = field(default_factory=dict)


def message_context(*, message: Message, contact: Contact, entity: str = "") -> dict[str, str]:
    """What a template's data source may bind: contact fields, the entity and the message itself."""
    return {
        "contact_phone": contact.phone or "",
        "contact_name": contact.profile_name or "",
        "contact_bsuid": contact.bsuid or "",
        "entity": entity or "",
        "text": message.text or message.payload or "",
        "channel": message.channel,
        "message_id": str(message.pk),
    }


def template_reply(*, message: Message, contact: Contact, template, entity: str = "", index: int = 0) -> Message:
    """Resolve `template`'s values for this message, validate and queue it as reply number `index`.

    Raises TemplateValidationError with the precise reasons when the values do not fit.
    """
    from apps.message_templates.services import template_values_resolve

    values = template_values_resolve(
        template=template, context=message_context(message=message, contact=contact, entity=entity)
    )
    return outbound_template_create(
        contact=contact,
        template=template,
        values=values,
        channel=message.channel,
        in_reply_to=message,
        idempotency_key=reply_idempotency_key(inbound=message, index=index),
    )


def fallback_reply(*, message: Message, contact: Contact, index: int = 0) -> Message:
    """The request-received template (settings.FALLBACK_TEMPLATE_NAME) as the reply."""
    from apps.message_templates.services import template_get

    template = template_get(name=settings.FALLBACK_TEMPLATE_NAME, language=contact.language or "")
    return template_reply(message=message, contact=contact, template=template, index=index)


def validation_reasons(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    return "; ".join(errors) if errors else str(exc)


def _text_reply(message: Message, contact: Contact, key: str, language: str, index: int = 0) -> Message | None:
    """A pipeline text (confirmation, notice); None when it may not go (window closed, opted out)."""
    try:
        with transaction.atomic():
            return outbound_text_create(
                contact=contact,
                text=text_for(key, language),
                channel=message.channel,
                in_reply_to=message,
                idempotency_key=reply_idempotency_key(inbound=message, index=index),
            )
    except (WindowClosedError, OptedOutError) as exc:
        logger.info("no %s text for inbound %s: %s", key, message.pk, exc.message)
        return None


def _decide(message: Message, contact: Contact) -> Decision:
    text = (message.text or message.payload or "").strip()
    word = command_word(text)

    if settings.ALLOWED_PHONE_NUMBERS and contact.phone not in _allowed_numbers():
        return Decision(Route.BLOCKED, context={"reason": "not in ALLOWED_PHONE_NUMBERS"})

    if word in OPT_IN_WORDS:
        was_opted_out = contact.opted_out_at is not None
        contact_opt_in(contact=contact)
        reply = _text_reply(message, contact, "opted_in", OPT_IN_WORDS[word])
        return Decision(
            Route.OPTED_OUT, reply=reply, intent="opt_in", context={"opt_in": True, "was_opted_out": was_opted_out}
        )
    if contact.opted_out_at is not None:
        return Decision(Route.OPTED_OUT, context={"reason": "contact opted out"})
    if word in OPT_OUT_WORDS:
        # Confirm first: once opted out, nothing more goes to the contact.
        reply = _text_reply(message, contact, "opted_out", OPT_OUT_WORDS[word])
        contact_opt_out(contact=contact)
        return Decision(Route.OPTED_OUT, reply=reply, intent="opt_out", context={"opt_out": True})

    decision = rate_hit(
        key=f"inbound:{contact.pk}",
        limit=settings.RATE_LIMIT_MAX_REQUESTS,
        window_seconds=settings.RATE_LIMIT_WINDOW_SECONDS,
    )
    if not decision.allowed:
        context: dict[str, Any] = {
            "count": decision.count,
            "limit": decision.limit,
            "retry_after": decision.retry_after,
        }
        # One notice per window (the first message over the limit), then silence.
        reply = None
        if decision.count == decision.limit + 1:
            reply = _text_reply(message, contact, "rate_limited", contact.language)
            context["notice"] = True
        return Decision(Route.RATE_LIMITED, reply=reply, context=context)

    for flow in flows_registered():
        if not flow.claims(message=message, contact=contact):
            continue
        result = flow.handle(message=message, contact=contact)
        if result.passed:
            continue
        context = {"flow": flow.name, **result.context, "replies": [m.pk for m in result.replies]}
        return Decision(Route.FLOW, reply=result.replies[0] if result.replies else None, context=context)

    kind = MessageKind(message.kind) if message.kind in MessageKind._value2member_map_ else MessageKind.UNKNOWN
    if kind == MessageKind.REACTION:
        return Decision(Route.IGNORED, context={"reason": "reaction"})
    if kind in AI_MEDIA_KINDS or not text:
        return _to_ai(message, Decision(Route.UNMATCHED, context={"reason": f"{kind} message"}))

    from apps.message_templates.services import intent_match, intent_template

    match = intent_match(text=text, language=contact.language or "")
    if match is None:
        return _to_ai(message, Decision(Route.UNMATCHED, context={"reason": "no intent matched"}))
    found = Decision(
        Route.UNMATCHED,
        intent=match.intent.name,
        confidence=match.confidence,
        intent_source="keyword",
        entity=match.entity or "",
        context={"keyword": match.keyword},
    )
    template = intent_template(intent=match.intent)
    if match.confidence < settings.INTENT_MIN_CONFIDENCE or template is None:
        found.context["reason"] = "low confidence" if template is not None else "intent has no template"
        return _to_ai(message, found)
    found.route = Route.TEMPLATE
    found.template_name = template.name
    from apps.message_templates.services import DataSourceError, TemplateValidationError

    try:
        # No savepoint: nothing here fails after a write. A data source or resolver runs in its own savepoint,
        # validation raises before the reply's INSERT, and that INSERT cannot fail on its idempotency key.
        found.reply = template_reply(message=message, contact=contact, template=template, entity=found.entity)
    except (TemplateValidationError, DataSourceError) as exc:
        # Refused before sending, with the reason; the contact still hears that we got the message.
        found.success, found.error = False, validation_reasons(exc)
        found.context["validation_errors"] = list(getattr(exc, "errors", []) or [found.error])
        try:
            with transaction.atomic():
                found.reply = fallback_reply(message=message, contact=contact)
            found.context["fallback"] = settings.FALLBACK_TEMPLATE_NAME
        except Exception as fallback_exc:
            found.context["fallback_error"] = validation_reasons(fallback_exc)
        return found
    found.context["parameters"] = found.reply.template_parameters
    return found


def _to_ai(message: Message, decision: Decision) -> Decision:
    """The AI seam: the ai_answer actor decides (and replies) later; until then the route says unmatched."""
    decision.context["ai_pending"] = True
    enqueue_on_commit("ai_answer_task", message.pk)
    return decision


def _interaction_fields(message: Message, decision: Decision, started: float) -> dict:
    reply = decision.reply
    return {
        "contact_id": message.contact_id,
        "channel": message.channel,
        "intent": decision.intent,
        "confidence": decision.confidence,
        "intent_source": decision.intent_source,
        "entity": decision.entity[:200],
        "route": decision.route,
        "template_name": decision.template_name or (reply.template_name if reply else ""),
        "reply": reply,
        "processing_ms": int((time.monotonic() - started) * 1000),
        "success": decision.success,
        "error": decision.error,
        "context": decision.context,
    }


def _interaction_create(message: Message, decision: Decision, started: float) -> Interaction:
    """The message's Interaction, inside the transaction that claimed it: nobody else can have written one
    (a conflict aborts that transaction and the error path below records the failure)."""
    fields = _interaction_fields(message, decision, started)
    return interaction_insert(Interaction(message=message, **fields), timezone.now())


def _interaction_save(message: Message, decision: Decision, started: float) -> Interaction:
    interaction, _ = Interaction.objects.update_or_create(
        message=message, defaults=_interaction_fields(message, decision, started)
    )
    return interaction


def _claim(message_id: int) -> bool:
    return inbound_claim(message_id, timezone.now())


def ai_waiting_interactions():
    """Interactions whose message was handed to the AI actor and has no reply yet."""
    return Interaction.objects.filter(context__ai_pending=True, reply__isnull=True)


def _ai_wait_since() -> datetime | None:
    """How far back a message handed to the AI actor and still unanswered holds its contact's later messages
    (ai_waiting_interactions() created since then); None when they never wait."""
    horizon = settings.AI_REPLY_ORDER_WAIT_SECONDS
    if horizon <= 0:
        return None
    return timezone.now() - timedelta(seconds=horizon)


def contact_resume(*, contact_id: int) -> None:
    """Enqueue processing of the contact's oldest waiting inbound message (after an AI answer is done)."""
    next_id = inbound_waiting_query(contact_id).values_list("pk", flat=True).first()
    if next_id is not None:
        enqueue_on_commit("inbound_process_task", next_id)


def _process_one(message: Message) -> bool:
    """Decide and record one inbound row (read with its contact just before, under the contact's lock).

    Returns True when the message was handed to the AI actor: its answer is still to come.
    """
    started = time.monotonic()
    if message.kind in DOWNLOADED_KINDS and message.media and not message.media.get("stored_path"):
        # Before the claim, outside any transaction: a slow download must not hold locks.
        inbound_media_download(message=message)
    try:
        with transaction.atomic():
            if not _claim(message.pk):
                return False
            # The contact's writers in the pipeline all run under the contact's advisory lock (held here), so
            # the row read with the message is current; no row lock is needed.
            decision = _decide(message, message.contact)
            _interaction_create(message, decision, started)
        return bool(decision.context.get("ai_pending"))
    except Exception as exc:
        logger.exception("inbound %s from %s failed", message.pk, mask(message.contact.address))
        with transaction.atomic():
            _claim(message.pk)
            _interaction_save(
                message,
                Decision(Route.UNMATCHED, success=False, error=f"{type(exc).__name__}: {exc}"[:2000]),
                started,
            )
        return False


def _replies_resume(message_id: int) -> None:
    """Hand an already decided message's undelivered replies to delivery.

    Replies are delivered inline right after the decision commits. A worker killed between that commit and
    the send leaves them queued or sending, and its inbound task is redelivered by the broker: this is where
    that redelivery finishes the job (delivery takes the contact's outbound lock, so a send still in progress
    elsewhere is waited for, not doubled; an abandoned one follows the channel's resend rule).
    """
    pending = (
        Message.objects.filter(
            in_reply_to_id=message_id,
            direction=Direction.OUTBOUND,
            status__in=[MessageStatus.QUEUED, MessageStatus.SENDING],
        )
        .values_list("pk", flat=True)
        .first()
    )
    if pending is not None:
        enqueue_on_commit("outbound_deliver_task", pending)


def inbound_process(*, message_id: int) -> None:
    """Process the contact's pending inbound messages in arrival order, one contact at a time.

    Whichever task takes the contact's lock first handles every row of that contact still `received`,
    oldest (received_at, id) first; a task whose own row is already processed does nothing. An error in one
    message is recorded on its Interaction (success False) and processing goes on with the next.
    """
    state = message_state(message_id, Direction.INBOUND)
    if state is None:
        return
    contact_id, status = state
    if status != MessageStatus.RECEIVED:
        _replies_resume(message_id)
        return
    with advisory_lock("contact", contact_id):
        # Replies keep arrival order: while an earlier message waits for its AI answer, the later ones wait
        # (status received), so the first read finds none; the AI actor resumes the contact when it is done, the
        # sweeper past the horizon.
        ai_since = _ai_wait_since()
        seen: set[int] = set()
        while True:
            # The next row is read whole, with its contact as it is now (the previous message may have changed
            # it: STOP, a flow step). Two are asked for: nearly always only this task's own row is there, and the
            # missing second says that nothing else waits without another query. A row that arrives later has
            # its own task, which takes the contact's lock after this one.
            batch = inbound_waiting(contact_id, skip=seen, limit=2, ai_since=None if seen else ai_since)
            if not batch:
                return
            message = batch[0]
            seen.add(message.pk)
            if _process_one(message) or len(batch) < 2:
                return
