"""Model providers through the `openai` library: OpenAI, Azure OpenAI and OpenAI-compatible endpoints.

The client never retries (`max_retries=0`): the ai_answer actor owns retries and honours the provider's
`Retry-After`, which `provider_errors` reads from the error's response headers. Keys never reach a log line.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import openai
from django.conf import settings

from apps.assistant.errors import AIPermanentError, AITransientError
from apps.assistant.models import AIConfiguration, AIProvider

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

logger = logging.getLogger(__name__)

AZURE_DEFAULT_API_VERSION = "2024-10-21"
AZURE_TOKEN_SCOPE = "https://cognitiveservices.azure.com/.default"  # noqa: S105 (an OAuth scope)
# A Retry-After beyond this is treated as this: the actor's max age would drop the message anyway.
MAX_RETRY_AFTER_SECONDS = 300.0


@dataclass(frozen=True)
class ProviderConfig:
    """Everything needed to call one provider; hashable so clients can be reused per configuration."""

    name: str
    provider: str
    model: str
    api_key: str = field(default="", repr=False)
    base_url: str = ""
    api_version: str = ""
    deployment: str = ""
    use_entra_id: bool = False
    embedding_model: str = ""
    transcription_model: str = ""
    max_tokens: int = 500
    temperature: float = 0.2
    system_prompt: str = ""
    no_knowledge_reply: str = ""

    @property
    def chat_model(self) -> str:
        """The `model` argument: Azure routes by deployment name."""
        if self.provider == AIProvider.AZURE_OPENAI:
            return self.deployment or self.model
        return self.model

    @property
    def display_model(self) -> str:
        return self.chat_model


def provider_config_from(configuration: AIConfiguration) -> ProviderConfig:
    return ProviderConfig(
        name=configuration.name,
        provider=str(configuration.provider),
        model=configuration.model,
        api_key=configuration.api_key or "",
        base_url=configuration.base_url,
        api_version=configuration.api_version,
        deployment=configuration.deployment,
        use_entra_id=configuration.use_entra_id,
        embedding_model=configuration.embedding_model,
        transcription_model=configuration.transcription_model or settings.AI_TRANSCRIPTION_MODEL,
        max_tokens=configuration.max_tokens,
        temperature=configuration.temperature,
        system_prompt=configuration.system_prompt,
        no_knowledge_reply=configuration.no_knowledge_reply or settings.AI_NO_KNOWLEDGE_REPLY,
    )


def provider_config_current() -> ProviderConfig | None:
    """The active AIConfiguration, else the OPENAI_* settings, else None (no AI: retrieval-only answers)."""
    configuration = AIConfiguration.objects.filter(active=True).first()
    if configuration is not None:
        return provider_config_from(configuration)
    if settings.AZURE_OPENAI_ENDPOINT:
        # The azd deployment: Azure OpenAI with local auth off, reached with the site's managed identity
        # (a key, when one is set, takes precedence).
        return ProviderConfig(
            name="settings",
            provider=AIProvider.AZURE_OPENAI.value,
            model=settings.AI_MODEL,
            deployment=settings.AI_MODEL,
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.AZURE_OPENAI_ENDPOINT,
            api_version=settings.AZURE_OPENAI_API_VERSION,
            use_entra_id=not settings.OPENAI_API_KEY,
            embedding_model=settings.AI_EMBEDDING_MODEL,
            transcription_model=settings.AI_TRANSCRIPTION_MODEL,
            max_tokens=settings.AI_MAX_TOKENS,
            temperature=settings.AI_TEMPERATURE,
            no_knowledge_reply=settings.AI_NO_KNOWLEDGE_REPLY,
        )
    if not settings.OPENAI_API_KEY:
        return None
    return ProviderConfig(
        name="settings",
        provider=(AIProvider.COMPATIBLE if settings.OPENAI_BASE_URL else AIProvider.OPENAI).value,
        model=settings.AI_MODEL,
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        embedding_model=settings.AI_EMBEDDING_MODEL,
        transcription_model=settings.AI_TRANSCRIPTION_MODEL,
        max_tokens=settings.AI_MAX_TOKENS,
        temperature=settings.AI_TEMPERATURE,
        no_knowledge_reply=settings.AI_NO_KNOWLEDGE_REPLY,
    )


def provider_client(config: ProviderConfig, *, timeout: float) -> openai.OpenAI:
    """A client for `config` with an explicit timeout and no retries of its own (reused while unchanged)."""
    return _client(config, timeout)


@lru_cache(maxsize=16)
def _client(config: ProviderConfig, timeout: float) -> openai.OpenAI:
    if config.provider == AIProvider.AZURE_OPENAI:
        if not config.base_url:
            raise AIPermanentError(f"AI configuration {config.name!r}: Azure OpenAI needs the resource endpoint")
        kwargs: dict[str, Any] = {
            "azure_endpoint": config.base_url,
            "api_version": config.api_version or AZURE_DEFAULT_API_VERSION,
            "timeout": timeout,
            "max_retries": 0,
        }
        if config.use_entra_id:
            from azure.identity import DefaultAzureCredential, get_bearer_token_provider

            kwargs["azure_ad_token_provider"] = get_bearer_token_provider(DefaultAzureCredential(), AZURE_TOKEN_SCOPE)
        else:
            kwargs["api_key"] = config.api_key
        # No azure_deployment on the client: chat, embeddings and transcription each name their own deployment
        # as `model`, which the client turns into /openai/deployments/{model}/... paths.
        return openai.AzureOpenAI(**kwargs)
    kwargs = {"api_key": config.api_key, "timeout": timeout, "max_retries": 0}
    if config.base_url:
        kwargs["base_url"] = config.base_url
    return openai.OpenAI(**kwargs)


def retry_after_seconds(headers: Any) -> float | None:
    """`retry-after-ms`, then `retry-after` (seconds or an HTTP date), capped; None when absent or unreadable."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return min(max(float(value) / 1000, 0.0), MAX_RETRY_AFTER_SECONDS)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER_SECONDS)


@contextmanager
def provider_errors(config: ProviderConfig, operation: str) -> Iterator[None]:
    """Turn openai's errors into AITransientError / AIPermanentError (never with the key in the message)."""
    try:
        yield
    except openai.APITimeoutError as exc:
        logger.warning("ai %s timed out (config=%s)", operation, config.name)
        raise AITransientError(f"{operation}: the model timed out") from exc
    except openai.APIConnectionError as exc:
        logger.warning("ai %s could not connect (config=%s)", operation, config.name)
        raise AITransientError(f"{operation}: cannot reach the model provider") from exc
    except openai.APIStatusError as exc:
        status = exc.status_code
        retry_after = retry_after_seconds(exc.response.headers if exc.response is not None else None)
        # OpenAI answers 429 for an exhausted quota too; waiting does not refill it.
        quota = status == 429 and exc.code == "insufficient_quota"
        if (status in (408, 409, 429) or status >= 500) and not quota:
            logger.warning(
                "ai %s failed with %s, retry after %s (config=%s)", operation, status, retry_after, config.name
            )
            raise AITransientError(
                f"{operation}: provider answered {status}", retry_after=retry_after, status=status
            ) from exc
        logger.error("ai %s refused with %s %s (config=%s)", operation, status, exc.code or "", config.name)
        raise AIPermanentError(f"{operation}: provider refused with {status}", status=status) from exc
    except openai.OpenAIError as exc:
        logger.error("ai %s failed: %s (config=%s)", operation, type(exc).__name__, config.name)
        raise AIPermanentError(f"{operation}: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int


def provider_chat(
    *,
    config: ProviderConfig,
    messages: list[dict[str, Any]],
    max_tokens: int | None = None,
    temperature: float | None = None,
    timeout: float | None = None,
    operation: str = "chat",
) -> Completion:
    """One chat completion. Raises AITransientError / AIPermanentError."""
    client = provider_client(config, timeout=timeout or settings.AI_REQUEST_TIMEOUT_SECONDS)
    started = time.monotonic()
    with provider_errors(config, operation):
        response = client.chat.completions.create(
            model=config.chat_model,
            messages=cast("list[ChatCompletionMessageParam]", messages),
            max_tokens=max_tokens or config.max_tokens,
            temperature=config.temperature if temperature is None else temperature,
        )
    latency_ms = int((time.monotonic() - started) * 1000)
    choice = response.choices[0] if response.choices else None
    text = (choice.message.content or "") if choice is not None and choice.message is not None else ""
    usage = response.usage
    return Completion(
        text=text.strip(),
        model=response.model or config.chat_model,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        latency_ms=latency_ms,
    )


def provider_embed(*, config: ProviderConfig, texts: list[str]) -> list[list[float]]:
    """Embeddings for `texts` (same order). Raises AITransientError / AIPermanentError."""
    client = provider_client(config, timeout=settings.AI_REQUEST_TIMEOUT_SECONDS)
    with provider_errors(config, "embeddings"):
        response = client.embeddings.create(model=config.embedding_model, input=texts)
    ordered = sorted(response.data, key=lambda item: item.index)
    return [list(item.embedding) for item in ordered]


def provider_transcribe(*, config: ProviderConfig, file_name: str, content: bytes, mime_type: str) -> str:
    """Speech to text. Raises AITransientError / AIPermanentError."""
    client = provider_client(config, timeout=settings.AI_REQUEST_TIMEOUT_SECONDS)
    with provider_errors(config, "transcription"):
        response = client.audio.transcriptions.create(
            model=config.transcription_model or settings.AI_TRANSCRIPTION_MODEL,
            file=(file_name, content, mime_type),
        )
    text = response if isinstance(response, str) else getattr(response, "text", "")
    return (text or "").strip()
