"""The assistant's services. The pipeline (apps.interactions) calls the names re-exported here."""

from __future__ import annotations

from apps.assistant.errors import AIPermanentError, AITransientError
from apps.assistant.services.answers import (
    AIAnswer,
    IntentChoice,
    ai_answer_generate,
    ai_configured,
    ai_intent_classify,
    ai_transcribe,
)
from apps.assistant.services.configs import (
    ConnectionTest,
    ai_configuration_create,
    ai_configuration_problems,
    ai_configuration_save,
    ai_configuration_test,
    ai_configuration_update,
)
from apps.assistant.services.context import conversation_append, conversation_history, conversation_reset
from apps.assistant.services.knowledge import (
    knowledge_chunk_text,
    knowledge_document_create,
    knowledge_document_embed,
    knowledge_document_save,
    knowledge_text_from_file,
)

__all__ = [
    "AIAnswer",
    "AIPermanentError",
    "AITransientError",
    "ConnectionTest",
    "IntentChoice",
    "ai_answer_generate",
    "ai_configuration_create",
    "ai_configuration_problems",
    "ai_configuration_save",
    "ai_configuration_test",
    "ai_configuration_update",
    "ai_configured",
    "ai_intent_classify",
    "ai_transcribe",
    "conversation_append",
    "conversation_history",
    "conversation_reset",
    "knowledge_chunk_text",
    "knowledge_document_create",
    "knowledge_document_embed",
    "knowledge_document_save",
    "knowledge_text_from_file",
]
