"""Shared by the message_templates admin pages."""

from __future__ import annotations

from django.db import transaction

from ..services import intent_index_invalidate


class InvalidatesIndexMixin:
    """Writes through this admin change what matching sees: rebuild the keyword index after them (templates and
    data sources are read once per index version too).

    After the commit, not at once: the admin saves inside a transaction, and a worker that rebuilt before the
    commit would read the old rows and keep them until the next change.
    """

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        transaction.on_commit(intent_index_invalidate)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        transaction.on_commit(intent_index_invalidate)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        transaction.on_commit(intent_index_invalidate)

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        transaction.on_commit(intent_index_invalidate)
