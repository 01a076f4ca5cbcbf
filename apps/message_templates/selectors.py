"""Read-side queries of the templates app."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import Intent, WhatsAppTemplate


def intents_with_keyword_count(*, queryset: QuerySet[Intent] | None = None) -> QuerySet[Intent]:
    """Intents with `keyword_count` annotated and their template joined."""
    queryset = Intent.objects.all() if queryset is None else queryset
    return queryset.select_related("template").annotate(keyword_count=Count("keywords"))


def templates_sendable() -> QuerySet[WhatsAppTemplate]:
    """Templates that may be sent: active and approved."""
    return WhatsAppTemplate.objects.filter(active=True, status="approved").select_related("data_source")
