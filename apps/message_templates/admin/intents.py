"""Intents with their keywords inline, and keywords on their own."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import Intent, Keyword
from ..selectors import intents_with_keyword_count
from .base import InvalidatesIndexMixin


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
class IntentAdmin(InvalidatesIndexMixin, admin.ModelAdmin):
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
class KeywordAdmin(InvalidatesIndexMixin, admin.ModelAdmin):
    list_display = ("phrase", "language", "intent", "weight")
    list_filter = ("language", "intent")
    search_fields = ("phrase",)
    list_select_related = ("intent",)


# --- Data sources ---------------------------------------------------------------------------------
