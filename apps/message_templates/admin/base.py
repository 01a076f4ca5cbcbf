"""Shared by the message_templates admin pages."""

from __future__ import annotations

from ..services import intent_index_invalidate


class InvalidatesIndexMixin:
    """Writes through this admin change what matching sees: rebuild the keyword index after them (templates and
    data sources are read once per index version too)."""

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
