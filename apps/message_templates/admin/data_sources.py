"""Data sources (with a "test query" page and action) and the demo tables they read."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ..datasources import CONTEXT_PARAMETERS, query_problems
from ..models import DataSource, DataSourceKind, DemoDonationMethod, DemoEvent, DemoMinistry
from ..resolvers import resolver_get, resolver_names
from ..services import datasource_test, demo_search_text_refresh
from .base import InvalidatesIndexMixin


class DataSourceForm(forms.ModelForm):
    class Meta:
        model = DataSource
        fields = ("name", "description", "kind", "query", "resolver", "timeout_ms", "active", "sample_context")
        widgets = {"query": forms.Textarea(attrs={"rows": 10, "cols": 100, "style": "font-family:monospace"})}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
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
class DataSourceAdmin(InvalidatesIndexMixin, admin.ModelAdmin):
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
