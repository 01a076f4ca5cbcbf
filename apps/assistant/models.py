"""AI provider configurations and the knowledge base the assistant answers from."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core.crypto import EncryptedTextField


class AIProvider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    COMPATIBLE = "compatible", "OpenAI-compatible (OpenRouter, …)"


class AIConfiguration(models.Model):
    """One model provider. The active one (at most one) wins over the OPENAI_* settings."""

    name = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=20, choices=AIProvider.choices, default=AIProvider.OPENAI)
    # OpenAI: empty for api.openai.com; Azure: https://<resource>.openai.azure.com; compatible: the /v1 base URL.
    base_url = models.URLField(max_length=500, blank=True)
    api_version = models.CharField(max_length=40, blank=True, help_text="Azure OpenAI only, e.g. 2024-10-21")
    deployment = models.CharField(max_length=200, blank=True, help_text="Azure OpenAI chat deployment name")
    model = models.CharField(max_length=200, help_text="Model name (OpenAI / compatible)")
    api_key = EncryptedTextField(blank=True, help_text="Stored encrypted; leave blank on edit to keep the stored key")
    use_entra_id = models.BooleanField(
        default=False,
        help_text="Azure OpenAI: authenticate with Microsoft Entra ID (managed identity) instead of a key",
    )
    embedding_model = models.CharField(
        max_length=200, blank=True, help_text="Embedding model (Azure: deployment); empty = full-text search only"
    )
    transcription_model = models.CharField(
        max_length=200, blank=True, help_text="Speech-to-text model (Azure: deployment); empty = AI_TRANSCRIPTION_MODEL"
    )
    max_tokens = models.PositiveIntegerField(default=500)
    temperature = models.FloatField(default=0.2)
    system_prompt = models.TextField(blank=True, help_text="Prepended to the grounding rules and retrieved knowledge")
    no_knowledge_reply = models.TextField(blank=True, help_text="Sent when the knowledge base has nothing relevant")
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "AI configuration"
        constraints = [
            # The active configuration is looked up with filter(active=True).first(); two would be ambiguous.
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="assistant_one_active_config"),
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=2), name="assistant_temperature_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"


class KnowledgeLanguage(models.TextChoices):
    SPANISH = "es", "Spanish"
    ENGLISH = "en", "English"
    OTHER = "other", "Other (no stemming)"


# The PostgreSQL text-search configuration for each language.
SEARCH_CONFIGS: dict[str, str] = {KnowledgeLanguage.SPANISH: "spanish", KnowledgeLanguage.ENGLISH: "english"}


def search_config_for(language: str) -> str:
    return SEARCH_CONFIGS.get(language, "simple")


class KnowledgeDocument(models.Model):
    title = models.CharField(max_length=200)
    content = models.TextField(blank=True)
    language = models.CharField(max_length=8, choices=KnowledgeLanguage.choices, default=KnowledgeLanguage.SPANISH)
    tags = models.CharField(max_length=300, blank=True, help_text="Comma-separated")
    active = models.BooleanField(default=True)
    source_file_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]


class KnowledgeChunk(models.Model):
    """A passage of a document, the unit of retrieval.

    On PostgreSQL each search configuration has a partial GIN index over `to_tsvector(<config>, text)`
    (migration 0002); the full-text selector filters on `search_config` so the planner can use them.
    """

    document = models.ForeignKey(KnowledgeDocument, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    text = models.TextField()
    # 'spanish' | 'english' | 'simple', copied from the document's language when chunked.
    search_config = models.CharField(max_length=20, default="simple")
    # The provider's embedding of `text` (a list of floats), when the provider offers embeddings.
    embedding = models.JSONField(null=True, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["document_id", "index"]
        constraints = [models.UniqueConstraint(fields=["document", "index"], name="assistant_chunk_unique_index")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.index}"
