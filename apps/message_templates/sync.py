"""Template sync: ACS's template list (Meta's approved WhatsApp templates) → `WhatsAppTemplate` rows.

Templates are created and approved in Meta's WhatsApp Manager; ACS only lists them. A sync upserts every listed
template by (name, language) with what the provider owns — status, category, body / header / footer text, the
ordered parameter names and the raw provider content — and leaves what the admin curates (data source,
parameter mapping, static and sample values, Twilio Content SID, `active`) untouched.

A template that a previous sync brought in and that ACS no longer lists is marked `disabled` (Meta deleted it;
sending it would fail). Templates never synced (created in the admin or by `seed_demo`) are left alone: their
absence from ACS says nothing about them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import transaction
from django.utils import timezone

from .models import TemplateCategory, TemplateStatus, WhatsAppTemplate

logger = logging.getLogger(__name__)

# {{1}} positional, {{event_name}} named (Meta: lower-case letters, digits, underscores).
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_STATUSES = {choice.value for choice in TemplateStatus}
# Meta's own statuses (content.status) when ACS's is missing or unknown.
_META_STATUSES = {
    "APPROVED": TemplateStatus.APPROVED,
    "PENDING": TemplateStatus.PENDING,
    "IN_APPEAL": TemplateStatus.PENDING,
    "REJECTED": TemplateStatus.REJECTED,
    "PAUSED": TemplateStatus.PAUSED,
    "DISABLED": TemplateStatus.DISABLED,
    "PENDING_DELETION": TemplateStatus.DISABLED,
    "DELETED": TemplateStatus.DISABLED,
    "LIMIT_EXCEEDED": TemplateStatus.PAUSED,
}
_CATEGORIES = {choice.value for choice in TemplateCategory}
_NAME_MAX: int = WhatsAppTemplate._meta.get_field("name").max_length or 0
_LANGUAGE_MAX: int = WhatsAppTemplate._meta.get_field("language").max_length or 0
_HEADER_MAX = WhatsAppTemplate._meta.get_field("header_text").max_length
_FOOTER_MAX = WhatsAppTemplate._meta.get_field("footer_text").max_length
SYNCED_FIELDS = [
    "status",
    "category",
    "body_text",
    "header_text",
    "footer_text",
    "parameters",
    "named_parameters",
    "provider_content",
]


@dataclass
class SyncReport:
    """What a sync did; names are "name (language)"."""

    listed: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.listed} templates listed by ACS: {len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.disabled)} disabled (no longer listed), "
            f"{len(self.skipped)} skipped"
        )


@dataclass(frozen=True)
class TemplateDefinition:
    """The provider-owned part of a template, parsed from Meta's template JSON."""

    status: str
    category: str | None
    body_text: str
    header_text: str
    footer_text: str
    parameters: list[str]
    named_parameters: bool


def template_definition_parse(*, status: str, content: dict[str, Any]) -> TemplateDefinition:
    """Meta template content → definition. Parameter names are the body's placeholders in order: positional
    ones ("1", "2", …) sorted by number, named ones in order of first appearance (named_parameters=True)."""
    raw_components = content.get("components")
    components: list[Any] = raw_components if isinstance(raw_components, list) else []
    texts: dict[str, str] = {}
    for component in components:
        if isinstance(component, dict) and isinstance(component.get("text"), str):
            texts.setdefault(str(component.get("type", "")).upper(), component["text"])
    body = texts.get("BODY", "")
    names: list[str] = []
    for name in _PLACEHOLDER_RE.findall(body):
        if name not in names:
            names.append(name)
    positional = bool(names) and all(name.isdigit() for name in names)
    if positional:
        names.sort(key=int)
    # Meta says so explicitly for templates created with named parameters; otherwise the placeholders tell.
    named = str(content.get("parameter_format", "")).upper() == "NAMED" or (bool(names) and not positional)
    category = str(content.get("category") or "").lower()
    return TemplateDefinition(
        status=_status(status, content),
        category=category if category in _CATEGORIES else None,
        body_text=body,
        header_text=texts.get("HEADER", "")[:_HEADER_MAX],
        footer_text=texts.get("FOOTER", "")[:_FOOTER_MAX],
        parameters=names,
        named_parameters=named,
    )


def _status(status: str, content: dict[str, Any]) -> str:
    value = (status or "").strip().lower()
    if value in _STATUSES:
        return value
    return _META_STATUSES.get(str(content.get("status") or "").upper(), TemplateStatus.PENDING)


def templates_sync(*, channel_id: str = "") -> SyncReport:
    """Pull every template of the ACS channel (all pages) and upsert it by (name, language).

    Raises apps.channels.base.ChannelError when ACS cannot be reached or refuses; nothing is written then.
    """
    from apps.channels.acs import AcsChannel
    from apps.channels.registry import channel_get

    listed = cast(AcsChannel, channel_get("acs")).templates_list(channel_id=channel_id)
    report = SyncReport(listed=len(listed))
    now = timezone.now()
    seen: set[tuple[str, str]] = set()
    with transaction.atomic():
        for item in listed:
            label = f"{item.name} ({item.language})"
            if not item.name or not item.language or len(item.name) > _NAME_MAX or len(item.language) > _LANGUAGE_MAX:
                report.skipped.append(label)
                continue
            if (item.name, item.language) in seen:
                report.skipped.append(f"{label}: listed twice")
                continue
            seen.add((item.name, item.language))
            definition = template_definition_parse(status=item.status, content=item.content)
            values = {
                "status": definition.status,
                "body_text": definition.body_text,
                "header_text": definition.header_text,
                "footer_text": definition.footer_text,
                "parameters": definition.parameters,
                "named_parameters": definition.named_parameters,
                "provider_content": item.content,
            }
            if definition.category:
                values["category"] = definition.category
            template = (
                WhatsAppTemplate.objects.select_for_update(no_key=True)
                .filter(name=item.name, language=item.language)
                .first()
            )
            if template is None:
                WhatsAppTemplate.objects.create(name=item.name, language=item.language, last_synced_at=now, **values)
                report.created.append(label)
                continue
            changed = [name for name, value in values.items() if getattr(template, name) != value]
            for name in changed:
                setattr(template, name, values[name])
            template.last_synced_at = now
            template.save(update_fields=[*changed, "last_synced_at", "updated_at"])
            (report.updated if changed else report.unchanged).append(label)
        # Only templates an earlier sync brought in: hand-made and demo templates were never listed by ACS.
        # An empty listing is far more likely a wrong channel id than Meta deleting everything: disable nothing.
        gone = (
            WhatsAppTemplate.objects.select_for_update(no_key=True)
            .filter(last_synced_at__isnull=False, last_synced_at__lt=now)
            .exclude(status=TemplateStatus.DISABLED)
            if listed
            else WhatsAppTemplate.objects.none()
        )
        for template in gone:
            if (template.name, template.language) in seen:
                continue
            template.status = TemplateStatus.DISABLED
            template.save(update_fields=["status", "updated_at"])
            report.disabled.append(f"{template.name} ({template.language})")
        transaction.on_commit(_intent_index_invalidate)
    logger.info("templates sync: %s", report.summary())
    return report


def _intent_index_invalidate() -> None:
    # Intents point at templates; the matcher's cached index must see new statuses.
    from .services import intent_index_invalidate

    intent_index_invalidate()
