"""Templates: a live preview (body rendered from `sample_values`) with the validation result, and a test send."""

from __future__ import annotations

import json
import uuid

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from apps.core.exceptions import ApplicationError

from ..exceptions import TemplateValidationError
from ..models import WhatsAppTemplate
from ..services import template_preview
from .base import InvalidatesIndexMixin

# --- Templates ------------------------------------------------------------------------------------


@admin.register(WhatsAppTemplate)
class WhatsAppTemplateAdmin(InvalidatesIndexMixin, admin.ModelAdmin):
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
        from ..sync import templates_sync

        try:
            result = templates_sync()
        except ApplicationError as exc:
            self.message_user(request, f"Sync from ACS failed: {exc.message}", messages.ERROR)
            return
        except Exception as exc:
            self.message_user(request, f"Sync from ACS failed: {exc}", messages.ERROR)
            return
        # templates_sync invalidated the keyword index when its transaction committed.
        summary = result.summary() if hasattr(result, "summary") else str(result)
        self.message_user(request, f"Synced from ACS: {summary}", messages.SUCCESS)


# --- Intents --------------------------------------------------------------------------------------


def _channel_choices() -> list[tuple[str, str]]:
    from apps.interactions.models import Channel

    return list(Channel.choices)


class TestSendForm(forms.Form):
    phone = forms.CharField(max_length=20, help_text="E.164, e.g. +254700000001")
    channel = forms.ChoiceField(choices=_channel_choices)
