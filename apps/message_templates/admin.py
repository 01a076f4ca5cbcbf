"""Admin for templates, intents + keywords, data sources and the demo tables.

Templates show a live preview (body rendered from `sample_values`) with the validation result; data sources
have a "test query" page and action; every save of an intent, keyword or template bumps the keyword index.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from apps.core.exceptions import ApplicationError

from .datasources import CONTEXT_PARAMETERS, query_problems
from .exceptions import TemplateValidationError
from .models import (
    DataSource,
    DataSourceKind,
    DemoDonationMethod,
    DemoEvent,
    DemoMinistry,
    Intent,
    Keyword,
    WhatsAppTemplate,
)
from .resolvers import resolver_get, resolver_names
from .selectors import intents_with_keyword_count
from .services import (
    datasource_test,
    demo_search_text_refresh,
    intent_index_invalidate,
    template_preview,
)


class _InvalidatesIndex:
    """Writes through this admin change what matching sees: rebuild the keyword index after them."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        intent_index_invalidate()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        intent_index_invalidate()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        intent_index_invalidate()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        intent_index_invalidate()


# --- Templates ------------------------------------------------------------------------------------


@admin.register(WhatsAppTemplate)
class WhatsAppTemplateAdmin(_InvalidatesIndex, admin.ModelAdmin):
    list_display = ("name", "language", "category", "status", "active", "parameter_count", "data_source")
    list_filter = ("status", "active", "category", "language")
    search_fields = ("name", "body_text")
    list_select_related = ("data_source",)
    readonly_fields = ("preview", "last_synced_at", "created_at", "updated_at")
    actions = ("sync_from_acs",)
    fieldsets = (
        (None, {"fields": ("name", "language", "category", "status", "active")}),
        ("Content", {"fields": ("parameters", "named_parameters", "header_text", "body_text", "footer_text")}),
        (
            "Values",
            {"fields": ("data_source", "parameter_mapping", "static_values", "sample_values")},
        ),
        ("Preview", {"fields": ("preview",)}),
        (
            "Provider",
            {
                "classes": ("collapse",),
                "fields": ("twilio_content_sid", "provider_content", "last_synced_at", "created_at", "updated_at"),
            },
        ),
    )

    @admin.display(description="parameters")
    def parameter_count(self, obj: WhatsAppTemplate) -> int:
        return len(obj.parameters or [])

    @admin.display(description="preview (sample values)")
    def preview(self, obj: WhatsAppTemplate) -> str:
        if obj.pk is None:
            return "Save the template to see its preview."
        result = template_preview(template=obj)
        if result.errors:
            verdict = format_html(
                '<p style="color:#ba2121"><strong>Invalid</strong></p><ul class="template-errors">{}</ul>',
                format_html_join("", "<li>{}</li>", ((e,) for e in result.errors)),
            )
        else:
            verdict = mark_safe('<p style="color:#2a7d2a"><strong>Valid</strong>: ready to send.</p>')
        resolved = ""
        if obj.data_source_id:
            if result.resolve_error:
                resolved = format_html("<p>Data source <code>{}</code>: {}</p>", obj.data_source, result.resolve_error)
            else:
                resolved = format_html(
                    "<p>Data source <code>{}</code> with its sample context gives:</p><pre>{}</pre>",
                    obj.data_source,
                    json.dumps(result.resolved, ensure_ascii=False, indent=2),
                )
        test_send = reverse("admin:message_templates_whatsapptemplate_test_send", args=[obj.pk])
        return format_html(
            '<div class="template-preview" style="white-space:pre-wrap;max-width:40em;padding:.6em;'
            'background:#dcf8c6;border-radius:6px">{}</div>{}{}<p><a class="button" href="{}">Test send…</a></p>',
            result.text,
            verdict,
            resolved,
            test_send,
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/test-send/",
                self.admin_site.admin_view(self.test_send_view),
                name="message_templates_whatsapptemplate_test_send",
            ),
            *super().get_urls(),
        ]

    def test_send_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Send the template with its sample values to one phone number, through the real outbound path."""
        template = get_object_or_404(WhatsAppTemplate, pk=pk)
        if not self.has_change_permission(request, template):
            return HttpResponse(status=403)
        form = TestSendForm(request.POST or None, initial={"channel": settings.DEFAULT_CHANNEL})
        sent = None
        errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            # The pipeline's services do the sending; imported here because interactions builds on this app.
            from apps.interactions.services.contacts import contact_resolve
            from apps.interactions.services.outbound import outbound_template_create

            values = {str(k): v for k, v in (template.sample_values or {}).items()}
            try:
                contact = contact_resolve(channel=form.cleaned_data["channel"], phone=form.cleaned_data["phone"])
                sent = outbound_template_create(
                    contact=contact,
                    template=template,
                    values=values,
                    channel=form.cleaned_data["channel"],
                    idempotency_key=f"admin-test-send-{uuid.uuid4()}",
                )
            except TemplateValidationError as exc:
                errors = exc.errors
            except (ApplicationError, ValueError) as exc:
                errors = [getattr(exc, "message", str(exc))]
            if sent is not None:
                self.message_user(
                    request, f"Queued test send of {template} to {contact.phone} (message {sent.pk}).", messages.SUCCESS
                )
        return TemplateResponse(
            request,
            "admin/message_templates/template_test_send.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": template,
                "title": f"Test send {template}",
                "template_obj": template,
                "form": form,
                "errors": errors,
                "sent": sent,
                "preview": template_preview(template=template),
            },
        )

    @admin.action(description="Sync from ACS")
    def sync_from_acs(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Imported here: the sync module pulls in the ACS SDK, which the rest of the admin does not need.
        from .sync import templates_sync

        try:
            result = templates_sync()
        except ApplicationError as exc:
            self.message_user(request, f"Sync from ACS failed: {exc.message}", messages.ERROR)
            return
        except Exception as exc:
            self.message_user(request, f"Sync from ACS failed: {exc}", messages.ERROR)
            return
        intent_index_invalidate()
        summary = result.summary() if hasattr(result, "summary") else str(result)
        self.message_user(request, f"Synced from ACS: {summary}", messages.SUCCESS)


# --- Intents --------------------------------------------------------------------------------------


def _channel_choices() -> list[tuple[str, str]]:
    from apps.interactions.models import Channel

    return list(Channel.choices)


class TestSendForm(forms.Form):
    phone = forms.CharField(max_length=20, help_text="E.164, e.g. +254700000001")
    channel = forms.ChoiceField(choices=_channel_choices)


class KeywordInline(admin.TabularInline):
    model = Keyword
    extra = 3
    fields = ("phrase", "language", "weight")


class IntentForm(forms.ModelForm):
    class Meta:
        model = Intent
        fields = ("name", "description", "priority", "template", "entity_pattern", "active")

    def clean_entity_pattern(self) -> str:
        pattern = self.cleaned_data.get("entity_pattern", "")
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise forms.ValidationError(f"Not a valid regular expression: {exc}") from exc
        return pattern


@admin.register(Intent)
class IntentAdmin(_InvalidatesIndex, admin.ModelAdmin):
    form = IntentForm
    inlines = (KeywordInline,)
    list_display = ("name", "priority", "template", "keyword_count", "active")
    list_filter = ("active",)
    search_fields = ("name", "description", "keywords__phrase")
    list_select_related = ("template",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Intent]:
        return intents_with_keyword_count(queryset=super().get_queryset(request))

    @admin.display(description="keywords", ordering="keyword_count")
    def keyword_count(self, obj: Intent) -> int:
        return getattr(obj, "keyword_count", None) or obj.keywords.count()


@admin.register(Keyword)
class KeywordAdmin(_InvalidatesIndex, admin.ModelAdmin):
    list_display = ("phrase", "language", "intent", "weight")
    list_filter = ("language", "intent")
    search_fields = ("phrase",)
    list_select_related = ("intent",)


# --- Data sources ---------------------------------------------------------------------------------


class DataSourceForm(forms.ModelForm):
    class Meta:
        model = DataSource
        fields = ("name", "description", "kind", "query", "resolver", "timeout_ms", "active", "sample_context")
        widgets = {"query": forms.Textarea(attrs={"rows": 10, "cols": 100, "style": "font-family:monospace"})}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if kind == DataSourceKind.SQL:
            problems = query_problems(data.get("query") or "")
            if problems:
                self.add_error("query", list(problems))
        elif kind == DataSourceKind.PYTHON:
            name = data.get("resolver") or ""
            if resolver_get(name) is None:
                available = ", ".join(resolver_names()) or "none"
                self.add_error("resolver", f"No resolver named '{name}' is registered (available: {available}).")
        return data


@admin.register(DataSource)
class DataSourceAdmin(admin.ModelAdmin):
    form = DataSourceForm
    list_display = ("name", "kind", "active", "timeout_ms", "template_count", "test_link")
    list_filter = ("kind", "active")
    search_fields = ("name", "description", "query")
    actions = ("test_query",)
    readonly_fields = ("test_link", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[DataSource]:
        return super().get_queryset(request).annotate(template_count=Count("templates"))

    def get_fields(self, request, obj=None):
        fields = [
            "name",
            "description",
            "kind",
            "query",
            "resolver",
            "timeout_ms",
            "active",
            "sample_context",
        ]
        return [*fields, "test_link", "created_at", "updated_at"] if obj else fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.base_fields["query"].help_text = (
            "One SELECT. Parameters: " + ", ".join(f"%({p})s" for p in CONTEXT_PARAMETERS) + ". Literal % is %%."
        )
        return form

    @admin.display(description="templates", ordering="template_count")
    def template_count(self, obj: DataSource) -> int:
        return getattr(obj, "template_count", 0)

    @admin.display(description="test")
    def test_link(self, obj: DataSource) -> str:
        if obj.pk is None:
            return ""
        url = reverse("admin:message_templates_datasource_test", args=[obj.pk])
        return format_html('<a class="button" href="{}">Test query</a>', url)

    def get_urls(self):
        return [
            path(
                "<int:pk>/test/",
                self.admin_site.admin_view(self.test_view),
                name="message_templates_datasource_test",
            ),
            *super().get_urls(),
        ]

    def test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Run the data source with its sample context (overridable field by field) and show row or error."""
        data_source = get_object_or_404(DataSource, pk=pk)
        if not self.has_view_or_change_permission(request, data_source):
            return HttpResponse(status=403)
        context = {name: str((data_source.sample_context or {}).get(name, "")) for name in CONTEXT_PARAMETERS}
        if request.GET.get("run"):
            context = {name: request.GET.get(name, "") for name in CONTEXT_PARAMETERS}
        result = datasource_test(data_source=data_source, context=context)
        return TemplateResponse(
            request,
            "admin/message_templates/datasource_test.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": data_source,
                "title": f"Test data source {data_source.name}",
                "data_source": data_source,
                "context_fields": list(context.items()),
                "result": result,
                "row_json": json.dumps(result.row, ensure_ascii=False, indent=2, default=str)
                if result.row is not None
                else "",
            },
        )

    @admin.action(description="Test query (with sample context)")
    def test_query(self, request: HttpRequest, queryset: QuerySet[DataSource]) -> None:
        for data_source in queryset:
            result = datasource_test(data_source=data_source, context=dict(data_source.sample_context or {}))
            if result.error:
                self.message_user(request, f"{data_source.name}: {result.error}", messages.ERROR)
            elif result.row is None:
                self.message_user(request, f"{data_source.name}: no row ({result.elapsed_ms} ms)", messages.WARNING)
            else:
                row = json.dumps(result.row, ensure_ascii=False, default=str)
                self.message_user(request, f"{data_source.name}: {row} ({result.elapsed_ms} ms)", messages.SUCCESS)


# --- Demo tables ----------------------------------------------------------------------------------


class _DemoAdmin(admin.ModelAdmin):
    readonly_fields = ("search_text",)

    def save_model(self, request, obj, form, change):
        demo_search_text_refresh(obj=obj)
        super().save_model(request, obj, form, change)


@admin.register(DemoEvent)
class DemoEventAdmin(_DemoAdmin):
    list_display = ("name", "starts_at", "location")
    search_fields = ("name", "description", "location")


@admin.register(DemoMinistry)
class DemoMinistryAdmin(_DemoAdmin):
    list_display = ("name", "leader", "phone", "email", "position")
    search_fields = ("name", "leader")


@admin.register(DemoDonationMethod)
class DemoDonationMethodAdmin(_DemoAdmin):
    list_display = ("name", "details", "position")
    search_fields = ("name",)
