"""AI provider configurations: create, update, activate (at most one) and test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from apps.assistant.errors import AIPermanentError
from apps.assistant.models import AIConfiguration, AIProvider
from apps.assistant.providers import ProviderConfig, provider_chat, provider_config_current, provider_config_from
from apps.core.exceptions import ApplicationError, ConflictError

EDITABLE_FIELDS = (
    "name",
    "provider",
    "base_url",
    "api_version",
    "deployment",
    "model",
    "use_entra_id",
    "embedding_model",
    "transcription_model",
    "max_tokens",
    "temperature",
    "system_prompt",
    "no_knowledge_reply",
)


def ai_configuration_problems(*, configuration: AIConfiguration) -> dict[str, str]:
    """Field → what is missing or wrong for this provider; empty when the configuration can be used."""
    problems = {}
    if configuration.provider not in AIProvider.values:
        problems["provider"] = f"must be one of {', '.join(AIProvider.values)}"
    if configuration.provider == AIProvider.AZURE_OPENAI:
        if not configuration.base_url:
            problems["base_url"] = "Azure OpenAI needs the resource endpoint (https://<resource>.openai.azure.com)"
        if not (configuration.deployment or configuration.model):
            problems["deployment"] = "Azure OpenAI needs the deployment name"
        if not configuration.use_entra_id and not configuration.api_key:
            problems["api_key"] = "an API key is required unless Entra ID is used"
    else:
        if not configuration.model:
            problems["model"] = "required"
        if not configuration.api_key:
            problems["api_key"] = "required"
        if configuration.use_entra_id:
            problems["use_entra_id"] = "only for Azure OpenAI"
    if configuration.provider == AIProvider.COMPATIBLE and not configuration.base_url:
        problems["base_url"] = "an OpenAI-compatible provider needs its base URL (e.g. https://openrouter.ai/api/v1)"
    if not 0 <= configuration.temperature <= 2:
        problems["temperature"] = "must be between 0 and 2"
    if configuration.max_tokens < 1:
        problems["max_tokens"] = "must be at least 1"
    return problems


@transaction.atomic
def ai_configuration_save(
    *, configuration: AIConfiguration, api_key: str | None = None, activate: bool | None = None
) -> AIConfiguration:
    """Validate and save. `api_key` None or "" keeps the stored key; `activate` True deactivates the others.

    Raises ApplicationError (invalid) or ConflictError (another configuration was activated concurrently).
    """
    if api_key:
        configuration.api_key = api_key.strip()
    if activate is not None:
        configuration.active = activate
    problems = ai_configuration_problems(configuration=configuration)
    if problems:
        raise ApplicationError("the AI configuration is incomplete", {"fields": problems})
    try:
        with transaction.atomic():
            if configuration.active:
                AIConfiguration.objects.filter(active=True).exclude(pk=configuration.pk).update(active=False)
            configuration.save()
    except IntegrityError as exc:
        raise ConflictError("another AI configuration is active or has this name") from exc
    return configuration


def ai_configuration_create(
    *, name: str, model: str, api_key: str = "", activate: bool = False, **fields: Any
) -> AIConfiguration:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"unknown fields: {', '.join(sorted(unknown))}")
    configuration = AIConfiguration(name=name, model=model, **fields)
    return ai_configuration_save(configuration=configuration, api_key=api_key, activate=activate)


def ai_configuration_update(
    *, configuration: AIConfiguration, api_key: str | None = None, activate: bool | None = None, **fields: Any
) -> AIConfiguration:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"unknown fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(configuration, name, value)
    return ai_configuration_save(configuration=configuration, api_key=api_key, activate=activate)


@dataclass(frozen=True)
class ConnectionTest:
    name: str
    provider: str
    model: str
    latency_ms: int
    prompt_tokens: int | None
    completion_tokens: int | None
    reply: str


def ai_configuration_test(*, configuration: AIConfiguration | None = None) -> ConnectionTest:
    """One tiny completion with `configuration` (default: the one in use). Raises AITransientError /
    AIPermanentError (also when nothing is configured)."""
    config: ProviderConfig | None = (
        provider_config_from(configuration) if configuration is not None else provider_config_current()
    )
    if config is None:
        raise AIPermanentError("no AI provider is configured (no active configuration and no OPENAI_API_KEY)")
    completion = provider_chat(
        config=config,
        messages=[{"role": "user", "content": "Reply with the single word OK."}],
        max_tokens=5,
        temperature=0.0,
        operation="test",
    )
    return ConnectionTest(
        name=config.name,
        provider=config.provider,
        model=completion.model,
        latency_ms=completion.latency_ms,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        reply=completion.text,
    )
