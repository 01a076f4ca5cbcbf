"""The AI seam: what the pipeline could not answer with a keyword-matched template.

Without the `apps.assistant` app (not installed or not importable) the contact gets the request-received
template (settings.FALLBACK_TEMPLATE_NAME), route unmatched. With it: voice notes are transcribed and the
transcript goes through intent matching (templates first); a low-confidence keyword match is settled by
`ai_intent_classify` among the active intents; anything else gets `ai_answer_generate` (retrieval + model),
sent as text, route ai. Transient AI errors retry the actor (AIRetryLater); permanent ones answer a polite
apology, logged on the Interaction.
"""

from __future__ import annotations

import contextlib
import logging
import time
from importlib import import_module
from types import ModuleType
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.db import transaction

from apps.channels.base import MessageKind

from ..exceptions import AIRetryLater, OptedOutError, WindowClosedError
from ..models import Interaction, Message, Route
from .media import media_path
from .outbound import outbound_text_create, reply_idempotency_key
from .pipeline import ai_waiting_interactions, contact_resume, fallback_reply, template_reply, validation_reasons
from .texts import text_for

logger = logging.getLogger(__name__)


def assistant_services() -> ModuleType | None:
    """`<settings.AI_FALLBACK_APP>.services` (apps.assistant) when that app is installed and importable, else
    None. An empty AI_FALLBACK_APP turns the AI fallback off: unmatched messages get the fallback template."""
    app = getattr(settings, "AI_FALLBACK_APP", "apps.assistant")
    if not app or not django_apps.is_installed(app):
        return None
    try:
        return import_module(f"{app}.services")
    except ImportError:
        logger.exception("apps.assistant is installed but its services cannot be imported")
        return None


def _is(exc: Exception, assistant: ModuleType, name: str) -> bool:
    """Whether `exc` is the assistant's exception class `name` (exported by its services module)."""
    cls = getattr(assistant, name, None)
    if isinstance(cls, type) and isinstance(exc, cls):
        return True
    return any(klass.__name__ == name for klass in type(exc).__mro__)


def _save(interaction: Interaction, started: float, **fields: Any) -> None:
    context = {**interaction.context, **fields.pop("context", {}), "ai_pending": False}
    for name, value in fields.items():
        setattr(interaction, name, value)
    interaction.context = context
    interaction.processing_ms = (interaction.processing_ms or 0) + int((time.monotonic() - started) * 1000)
    interaction.save()
    # The contact's later messages waited behind this answer (inbound_process reads none of them while it is
    # pending): their turn now.
    contact_resume(contact_id=interaction.contact_id)


def _fallback(message: Message, interaction: Interaction, started: float, **context: Any) -> None:
    try:
        reply = fallback_reply(message=message, contact=message.contact)
    except Exception as exc:
        _save(
            interaction, started, route=Route.UNMATCHED, success=False, error=validation_reasons(exc), context=context
        )
        return
    _save(
        interaction,
        started,
        route=Route.UNMATCHED,
        reply=reply,
        template_name=reply.template_name,
        context={**context, "parameters": reply.template_parameters},
    )


def _apologise(message: Message, interaction: Interaction, started: float, *, error: str, **context: Any) -> None:
    """The polite "cannot answer that now" text (when the window and opt-in allow it), route ai, not a success."""
    reply = None
    with contextlib.suppress(WindowClosedError, OptedOutError):
        reply = outbound_text_create(
            contact=message.contact,
            text=text_for("ai_unavailable", message.contact.language or ""),
            channel=message.channel,
            in_reply_to=message,
            idempotency_key=reply_idempotency_key(inbound=message, index=0),
        )
    _save(interaction, started, route=Route.AI, reply=reply, success=False, error=error[:2000], context=context)


def ai_reply_abandon(*, message_id: int, reason: str) -> bool:
    """Give up on the AI answer to one inbound message: the contact gets the apology a permanent AI error gets,
    the Interaction says why, and the contact's later messages go on.

    For an answer that will never come: the provider failed through the actor's last retry, or the task was
    dropped (AI_MAX_AGE_MS) or lost (the sweeper finds those). Returns False, doing nothing, when the message
    is answered already or not waiting for the AI. The reply's idempotency key is the AI answer's, so a late
    answer and the apology can never both be sent.
    """
    started = time.monotonic()
    with transaction.atomic():
        interaction = (
            ai_waiting_interactions()
            .select_for_update(of=("self",))
            .select_related("message__contact")
            .filter(message_id=message_id)
            .first()
        )
        if interaction is None:
            return False
        logger.warning("AI answer to inbound %s given up: %s", message_id, reason)
        _apologise(interaction.message, interaction, started, error=reason, ai_given_up=True)
    return True


def _match_transcript(assistant: ModuleType, text: str, language: str):
    from apps.message_templates.services import intent_match

    match = intent_match(text=text, language=language)
    if match and match.confidence >= settings.INTENT_MIN_CONFIDENCE and match.intent.template is not None:
        return match
    return None


def _classify(assistant: ModuleType, text: str):
    from apps.message_templates.models import Intent

    intents = list(
        Intent.objects.filter(active=True, template__isnull=False)
        .select_related("template")
        .order_by("-priority", "name")
    )
    if not intents:
        return None, None
    choice = assistant.ai_intent_classify(text=text, intents=[(i.name, i.description) for i in intents])
    if choice is None or not getattr(choice, "name", ""):
        return None, choice
    intent = next((i for i in intents if i.name == choice.name), None)
    if intent is None or (choice.confidence or 0) < settings.INTENT_MIN_CONFIDENCE:
        return None, choice
    return intent, choice


def ai_reply_process(*, message_id: int) -> None:
    """Answer one inbound message the keyword pipeline handed over; idempotent across retries.

    Raises AIRetryLater when the AI provider failed transiently (the actor retries with its delay).
    """
    message = Message.objects.select_related("contact").get(pk=message_id)
    # No transaction around the whole: the model call may take seconds. Replies have deterministic keys, so
    # a retry after a crash finds the reply it already queued instead of sending a second one.
    interaction = Interaction.objects.filter(message=message).first()
    if interaction is None or not interaction.context.get("ai_pending") or interaction.reply_id:
        return
    started = time.monotonic()
    contact = message.contact
    assistant = assistant_services()
    if assistant is None:
        _fallback(message, interaction, started, ai="not installed")
        return

    text = (message.text or message.payload or "").strip()
    context: dict[str, Any] = {}
    try:
        path, mime = media_path(message), (message.media or {}).get("mime_type", "")
        configured = assistant.ai_configured()
        if message.kind == MessageKind.AUDIO and path and configured:
            transcript = assistant.ai_transcribe(media_path=path, mime_type=mime)
            context["transcript"] = transcript
            text = transcript.strip()
            match = _match_transcript(assistant, text, contact.language or "") if text else None
            if match is not None:
                reply = template_reply(
                    message=message, contact=contact, template=match.intent.template, entity=match.entity or ""
                )
                _save(
                    interaction,
                    started,
                    route=Route.TEMPLATE,
                    reply=reply,
                    intent=match.intent.name,
                    confidence=match.confidence,
                    intent_source="keyword",
                    entity=match.entity or "",
                    template_name=reply.template_name,
                    context={**context, "parameters": reply.template_parameters},
                )
                return
            path = ""  # the transcript stands for the audio from here on

        # No keyword match (or too weak a one): let the model pick among the intents before answering freely.
        if text and configured:
            intent, choice = _classify(assistant, text)
            if choice is not None:
                context["classification"] = {
                    "name": choice.name,
                    "confidence": choice.confidence,
                    "provider": choice.provider,
                    "model": choice.model,
                    "prompt_tokens": choice.prompt_tokens,
                    "completion_tokens": choice.completion_tokens,
                }
            if intent is not None:
                entity = getattr(choice, "entity", "") or interaction.entity
                reply = template_reply(message=message, contact=contact, template=intent.template, entity=entity)
                _save(
                    interaction,
                    started,
                    route=Route.TEMPLATE,
                    reply=reply,
                    intent=intent.name,
                    confidence=choice.confidence,
                    intent_source="ai",
                    entity=entity or "",
                    template_name=reply.template_name,
                    ai_provider=choice.provider or "",
                    ai_model=choice.model or "",
                    prompt_tokens=choice.prompt_tokens,
                    completion_tokens=choice.completion_tokens,
                    context={**context, "parameters": reply.template_parameters},
                )
                return

        answer = assistant.ai_answer_generate(
            contact_key=str(contact.pk),
            text=text,
            media_path=path,
            media_mime_type=mime if path else "",
            language=contact.language or "",
        )
    except Exception as exc:
        if _is(exc, assistant, "AITransientError"):
            raise AIRetryLater(str(exc), getattr(exc, "retry_after", None)) from exc
        if not _is(exc, assistant, "AIPermanentError") and not hasattr(exc, "errors"):
            raise
        logger.warning("AI could not answer inbound %s: %s", message.pk, exc)
        _apologise(message, interaction, started, error=f"{type(exc).__name__}: {validation_reasons(exc)}", **context)
        return

    ai_context = {
        **context,
        "ai": {
            "source": answer.source,
            "latency_ms": answer.latency_ms,
            "chunk_ids": list(answer.chunk_ids or []),
            "provider": answer.provider,
            "model": answer.model,
        },
    }
    # "none" with text is the assistant's own polite reply (unsupported attachment, file too large, media
    # without AI): send it. Only an empty answer falls back to the request-received template.
    if not (answer.text or "").strip():
        _fallback(message, interaction, started, **ai_context)
        return
    try:
        reply = outbound_text_create(
            contact=contact,
            text=answer.text,
            channel=message.channel,
            in_reply_to=message,
            idempotency_key=reply_idempotency_key(inbound=message, index=0),
        )
    except WindowClosedError:
        _fallback(message, interaction, started, **ai_context, window_closed=True)
        return
    _save(
        interaction,
        started,
        route=Route.AI if answer.source != "none" else Route.UNMATCHED,
        reply=reply,
        ai_provider=answer.provider or "",
        ai_model=answer.model or "",
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        context=ai_context,
    )
