"""Admin for AI configurations (keys masked, blank keeps the stored key) and the knowledge base."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from apps.assistant.errors import AIPermanentError, AITransientError
from apps.assistant.models import AIConfiguration, KnowledgeChunk, KnowledgeDocument
from apps.assistant.selectors import knowledge_search
from apps.assistant.services import (
    ai_configuration_problems,
    ai_configuration_save,
    ai_configuration_test,
    knowledge_document_save,
)
from apps.assistant.services.configs import EDITABLE_FIELDS
from apps.assistant.services.knowledge import KnowledgeUploadError, knowledge_text_from_file
from apps.core.crypto import secret_mask
from apps.core.exceptions import ApplicationError


class AIConfigurationForm(forms.ModelForm):
    base_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=AIConfiguration._meta.get_field("base_url").help_text
        or "OpenAI: empty; Azure: https://<resource>.openai.azure.com; compatible: the /v1 base URL",
    )
    # Not the model field: the stored key is never rendered back into the page, and blank means "keep it".
    new_api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = AIConfiguration
        # What the API may edit, plus the checkbox that makes a configuration the one in use (saved through
        # ai_configuration_save, like the activate action); the page's order comes from the fieldsets.
        fields = [*EDITABLE_FIELDS, "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.api_key if self.instance and self.instance.pk else ""
        self.fields["new_api_key"].help_text = (
            f"Stored: {secret_mask(stored)}. Leave blank to keep it." if stored else "Stored encrypted at rest."
        )

    def clean(self):
        cleaned = super().clean()
        candidate = self.instance
        for name, value in cleaned.items():
            if name != "new_api_key" and hasattr(candidate, name):
                setattr(candidate, name, value)
        if cleaned.get("new_api_key"):
            candidate.api_key = cleaned["new_api_key"]
        problems = ai_configuration_problems(configuration=candidate)
        if problems:
            fields = set(self.fields)
            raise ValidationError(
                {(k if k in fields else ("new_api_key" if k == "api_key" else None)): v for k, v in problems.items()}
            )
        return cleaned


@admin.register(AIConfiguration)
class AIConfigurationAdmin(admin.ModelAdmin):
    form = AIConfigurationForm
    list_display = ["name", "provider", "model_or_deployment", "masked_key", "active", "updated_at"]
    list_filter = ["provider", "active"]
    actions = ["test_connection", "activate"]
    fieldsets = [
        (None, {"fields": ["name", "provider", "active"]}),
        ("Endpoint", {"fields": ["base_url", "api_version", "deployment", "model", "new_api_key", "use_entra_id"]}),
        ("Models", {"fields": ["embedding_model", "transcription_model", "max_tokens", "temperature"]}),
        ("Prompting", {"fields": ["system_prompt", "no_knowledge_reply"]}),
    ]

    @admin.display(description="model")
    def model_or_deployment(self, obj: AIConfiguration) -> str:
        return obj.deployment or obj.model

    @admin.display(description="API key")
    def masked_key(self, obj: AIConfiguration) -> str:
        return "Entra ID" if obj.use_entra_id else (secret_mask(obj.api_key) or "—")

    def save_model(self, request, obj, form, change):
        # The form already checked the fields; what can still fail here is a concurrent activation (409).
        ai_configuration_save(configuration=obj, api_key=form.cleaned_data.get("new_api_key") or None)

    @admin.action(description="Test the connection (one tiny completion)")
    def test_connection(self, request: HttpRequest, queryset) -> None:
        for configuration in queryset:
            try:
                result = ai_configuration_test(configuration=configuration)
            except (AITransientError, AIPermanentError) as exc:
                self.message_user(request, f"{configuration.name}: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{configuration.name}: OK, model {result.model}, {result.latency_ms} ms, "
                f"{result.prompt_tokens} prompt + {result.completion_tokens} completion tokens",
                messages.SUCCESS,
            )

    @admin.action(description="Make the selected configuration the active one")
    def activate(self, request: HttpRequest, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one configuration to activate.", messages.WARNING)
            return
        configuration = queryset.get()
        try:
            ai_configuration_save(configuration=configuration, activate=True)
        except ApplicationError as exc:
            self.message_user(request, f"{configuration.name}: {exc.message} {exc.extra or ''}", messages.ERROR)
            return
        self.message_user(request, f"{configuration.name} is now active.", messages.SUCCESS)


class KnowledgeDocumentForm(forms.ModelForm):
    upload = forms.FileField(required=False, help_text="A .txt, .md or .pdf file; its text replaces the content below.")

    class Meta:
        model = KnowledgeDocument
        fields = ["title", "language", "tags", "active", "upload", "content"]
        widgets = {"content": forms.Textarea(attrs={"rows": 20})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["content"].required = False
        self.fields["title"].required = False

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("upload")
        if upload:
            try:
                cleaned["content"] = knowledge_text_from_file(file_name=upload.name, content=upload.read())
            except KnowledgeUploadError as exc:
                raise ValidationError({"upload": str(exc)}) from exc
            self.instance.source_file_name = upload.name
            if not cleaned.get("title"):
                cleaned["title"] = upload.name.rsplit(".", 1)[0][:200]
        if not cleaned.get("title"):
            self.add_error("title", "Required (or upload a file to take its name).")
        if not (cleaned.get("content") or "").strip():
            self.add_error("content", "Write the content or upload a file.")
        return cleaned


class KnowledgeChunkInline(admin.TabularInline):
    model = KnowledgeChunk
    fields = readonly_fields = ("index", "text", "search_config", "has_embedding")
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(boolean=True, description="embedding")
    def has_embedding(self, obj: KnowledgeChunk) -> bool:
        return obj.embedding is not None

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(KnowledgeDocument)
class KnowledgeDocumentAdmin(admin.ModelAdmin):
    form = KnowledgeDocumentForm
    list_display = ["title", "language", "tags", "active", "chunk_count", "source_file_name", "updated_at"]
    list_filter = ["language", "active"]
    search_fields = ["title", "tags", "content"]
    readonly_fields = ["source_file_name", "created_at", "updated_at"]
    inlines = [KnowledgeChunkInline]
    change_list_template = "admin/assistant/knowledgedocument/change_list.html"
    actions = ["rebuild_chunks"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(chunk_total=Count("chunks"))

    @admin.display(description="chunks", ordering="chunk_total")
    def chunk_count(self, obj: KnowledgeDocument) -> int:
        return getattr(obj, "chunk_total", 0)  # annotated by get_queryset

    def save_model(self, request, obj, form, change):
        knowledge_document_save(document=obj)

    @admin.action(description="Rebuild chunks and embeddings (after changing the AI provider)")
    def rebuild_chunks(self, request: HttpRequest, queryset) -> None:
        embedded = 0
        for document in queryset:
            knowledge_document_save(document=document)
            embedded += document.chunks.filter(embedding__isnull=False).count()
        self.message_user(
            request, f"Rebuilt {queryset.count()} documents; {embedded} chunks have embeddings.", messages.SUCCESS
        )

    def get_urls(self):
        preview = path(
            "search-preview/",
            self.admin_site.admin_view(self.search_preview_view),
            name="assistant_knowledgedocument_search_preview",
        )
        return [preview, *super().get_urls()]

    def search_preview_view(self, request: HttpRequest) -> HttpResponse:
        """The chunks retrieval would hand the model for a query, with their scores."""
        query = (request.GET.get("q") or "").strip()
        results = knowledge_search(query=query, min_score=0.0, limit=10) if query else []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Knowledge search preview",
            "query": query,
            "results": results,
        }
        return TemplateResponse(request, "admin/assistant/knowledgedocument/search_preview.html", context)
