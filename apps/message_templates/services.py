"""Templates: intent matching, parameter values from data sources, validation and rendering.

The pipeline calls, in order: `intent_match` → `template_get` (or the intent's template) →
`template_values_resolve` → `template_render`. Each raises from the one `ApplicationError` family.
"""

from __future__ import annotations

import contextlib
import copy
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from apps.core.exceptions import NotFoundError

from .datasources import datasource_run
from .exceptions import DataSourceError, TemplateValidationError
from .formatting import value_format
from .matching import KeywordIndex, KeywordRow
from .models import (
    DataSource,
    DemoDonationMethod,
    DemoEvent,
    DemoMinistry,
    Intent,
    Keyword,
    TemplateStatus,
    WhatsAppTemplate,
)

__all__ = [
    "DataSourceError",
    "IntentMatch",
    "Rendered",
    "TemplateValidationError",
    "datasource_run",
    "intent_index_invalidate",
    "intent_match",
    "intent_template",
    "template_get",
    "template_render",
    "template_values_resolve",
    "value_format",
]

MAX_BODY_LENGTH = 1024
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
_SPACES_RE = re.compile(r" {5,}")


# --- Intent matching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntentMatch:
    intent: Intent
    confidence: float
    entity: str
    keyword: str


_INDEX_VERSION_KEY = "message_templates:index_version"


class _IndexHolder:
    """The process's keyword index, rebuilt when the shared version (in the cache) changes.

    The cache is read at most every MESSAGE_TEMPLATES_INDEX_CHECK_SECONDS so that matching costs no network
    round trip; writers in this process invalidate immediately, other processes see a change within that
    interval. A cleared cache (no version) also counts as a change.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index: KeywordIndex | None = None
        self.intents: dict[int, tuple[list[str], tuple[Any, ...]]] = {}
        self.version: str | None = None
        self.checked_at = 0.0
        # Templates (with their data source) read since the index was built, as field values by template pk.
        self.templates: dict[int, tuple[tuple[Any, ...], tuple[Any, ...] | None]] = {}

    def get(self) -> tuple[KeywordIndex, dict[int, tuple[list[str], tuple[Any, ...]]]]:
        now = time.monotonic()
        interval = getattr(settings, "MESSAGE_TEMPLATES_INDEX_CHECK_SECONDS", 1.0)
        index = self.index
        if index is not None and now - self.checked_at < interval:
            return index, self.intents
        version = _shared_version()
        with self.lock:
            if self.index is None or version is None or version != self.version:
                self.index, self.intents = _index_build()
                self.templates = {}
                self.version = version
            self.checked_at = now
            return self.index, self.intents

    def reset(self) -> None:
        with self.lock:
            self.index = None
            self.version = None
            self.templates = {}

    def template(self, pk: int) -> WhatsAppTemplate | None:
        """Template `pk` with its data source: read once per index version, a fresh instance every call."""
        self.get()
        version = self.version
        entry = self.templates.get(pk)
        if entry is None:
            template = WhatsAppTemplate.objects.select_related("data_source").filter(pk=pk).first()
            if template is None:
                return None
            source = template.data_source
            entry = (_field_values(template), _field_values(source) if source is not None else None)
            with self.lock:
                # Another thread may have rebuilt for a newer version meanwhile: this read must not outlive it.
                if self.version == version:
                    self.templates[pk] = entry
        return _template_from(entry)


_TEMPLATE_FIELDS = [f.attname for f in WhatsAppTemplate._meta.concrete_fields]
_DATA_SOURCE_FIELDS = [f.attname for f in DataSource._meta.concrete_fields]


def _field_values(instance) -> tuple[Any, ...]:
    return tuple(getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields)


def _template_from(entry: tuple[tuple[Any, ...], tuple[Any, ...] | None]) -> WhatsAppTemplate:
    # Deep copies: JSON fields are mutable, and no caller may change what another one reads.
    template_values, source_values = copy.deepcopy(entry)
    template = WhatsAppTemplate.from_db("default", _TEMPLATE_FIELDS, template_values)
    source = DataSource.from_db("default", _DATA_SOURCE_FIELDS, source_values) if source_values else None
    WhatsAppTemplate.data_source.field.set_cached_value(template, source)
    return template


_holder = _IndexHolder()


def _shared_version() -> str | None:
    try:
        version = cache.get(_INDEX_VERSION_KEY)
        if version is None:
            cache.add(_INDEX_VERSION_KEY, uuid.uuid4().hex, None)
            version = cache.get(_INDEX_VERSION_KEY)
        return version
    except Exception:  # The cache being down must not stop matching; rebuild every check instead.
        return None


def _index_build() -> tuple[KeywordIndex, dict[int, tuple[list[str], tuple[Any, ...]]]]:
    field_names = [f.attname for f in Intent._meta.concrete_fields]
    pk = field_names.index(Intent._meta.pk.attname)
    intents = {
        values[pk]: (field_names, values) for values in Intent.objects.filter(active=True).values_list(*field_names)
    }
    rows = [
        KeywordRow(
            intent_id=k.intent_id,
            intent_name=k.intent.name,
            priority=k.intent.priority,
            phrase=k.phrase,
            language=k.language,
            weight=k.weight,
            entity_pattern=k.intent.entity_pattern,
        )
        for k in Keyword.objects.filter(intent__active=True).select_related("intent").order_by("id")
    ]
    return KeywordIndex.build(rows), intents


def intent_index_invalidate() -> None:
    """Call after writing intents, keywords, templates or data sources (after the commit): every process rebuilds
    its keyword index and reads templates afresh."""
    _holder.reset()
    # When the cache is down this process is still reset; the others rebuild when it is back.
    with contextlib.suppress(Exception):
        cache.set(_INDEX_VERSION_KEY, uuid.uuid4().hex, None)


def intent_match(*, text: str, language: str = "") -> IntentMatch | None:
    """The best active intent for `text`, or None when nothing matches with at least
    settings.INTENT_MIN_CONFIDENCE. `entity` is what the message says after the keyword (or what the intent's
    `entity_pattern` captures); `keyword` is the keyword phrase that matched. Deterministic for a given
    set of keywords; see `matching` for the rules."""
    if not text:
        return None
    index, intents = _holder.get()
    found = index.match(text, language=language)
    if found is None or found.confidence < settings.INTENT_MIN_CONFIDENCE:
        return None
    field_names, values = intents.get(found.intent_id, (None, None))
    if field_names is None or values is None:
        return None
    # A fresh instance per match: callers may follow `.template` without sharing cached relations.
    intent = Intent.from_db("default", field_names, values)
    return IntentMatch(intent=intent, confidence=found.confidence, entity=found.entity, keyword=found.keyword)


def intent_template(*, intent: Intent) -> WhatsAppTemplate | None:
    """The intent's template with its data source (None when the intent has none).

    Read from the database once per keyword-index version, like the intents themselves: the writers that
    invalidate the index (admin, sync, seed) cover templates and data sources too. Measured as 6 % of the
    worker's CPU per answered message when it was a query each time (P2 profile).
    """
    if intent.template_id is None:
        return None
    return _holder.template(intent.template_id)


# --- Templates ------------------------------------------------------------------------------------


def template_get(*, name: str, language: str = "") -> WhatsAppTemplate:
    """The active, approved template `name` in `language`: the exact language, else its base ("es" for
    "es_MX"), else any language (alphabetically first). Raises NotFoundError."""
    candidates = list(
        WhatsAppTemplate.objects.filter(name=name, active=True, status=TemplateStatus.APPROVED)
        .select_related("data_source")
        .order_by("language")
    )
    if not candidates:
        raise NotFoundError(f"No active approved template named '{name}'.", {"template": name, "language": language})
    wanted = language.replace("-", "_").lower()
    if wanted:
        base = wanted.split("_")[0]
        languages = [t.language.replace("-", "_").lower() for t in candidates]
        for accept in (lambda lang: lang == wanted, lambda lang: lang == base, lambda lang: lang.split("_")[0] == base):
            for template, lang in zip(candidates, languages, strict=True):
                if accept(lang):
                    return template
    return candidates[0]


def template_values_resolve(*, template: WhatsAppTemplate, context: dict[str, str]) -> dict[str, str]:
    """Values for the template's parameters: for each parameter, the data source row's column (named by
    `parameter_mapping`, else the parameter's own name), else the message context key of that name, else
    `static_values`. Parameters nothing provides are left out (template_render then names them).
    Raises DataSourceError when the data source fails."""
    row: dict[str, Any] = {}
    source = template.data_source
    if source is not None and source.active:
        row = datasource_run(data_source=source, context=context) or {}
    mapping = template.parameter_mapping or {}
    static = template.static_values or {}
    values: dict[str, str] = {}
    for parameter in template.parameters or []:
        column = str(mapping.get(parameter, parameter))
        value: Any = row.get(column)
        if value is None or value == "":
            # Context values are user input (profile names): whitespace is collapsed, not refused.
            value = " ".join(str(context.get(column) or "").split()) or None
        if value is None or value == "":
            value = static.get(parameter)
        if value is None or value == "":
            continue
        values[parameter] = value_format(value, language=template.language)
    return values


@dataclass(frozen=True)
class Rendered:
    template: WhatsAppTemplate
    parameters: list[tuple[str, str]]
    text: str


def template_problems(*, template: WhatsAppTemplate, values: dict[str, Any]) -> tuple[list[str], str]:
    """Every reason `template` cannot be sent with `values`, and the body text with values substituted."""
    errors: list[str] = []
    label = f"template '{template.name}'"
    if template.status != TemplateStatus.APPROVED:
        errors.append(f"{label} is not approved (status: {template.status}).")
    if not template.active:
        errors.append(f"{label} is not active.")
    if not (template.language or "").strip():
        errors.append(f"{label} has no language.")
    declared = [str(p) for p in (template.parameters or [])]
    seen: set[str] = set()
    for name in declared:
        if name in seen:
            errors.append(f"{label} declares parameter '{name}' more than once.")
        seen.add(name)
    for name in declared:
        if name not in values:
            errors.append(f"Missing value for parameter '{name}'.")
    unexpected = [str(k) for k in values if str(k) not in seen]
    for name in unexpected:
        errors.append(f"Unexpected parameter '{name}' ({label} declares: {', '.join(declared) or 'no parameters'}).")
    for name in declared:
        if name not in values:
            continue
        value = values[name]
        if value is None or not isinstance(value, str):
            errors.append(f"Parameter '{name}' must be text (got {type(value).__name__}).")
            continue
        if not value.strip():
            errors.append(f"Parameter '{name}' is empty.")
        if "\n" in value or "\r" in value:
            errors.append(f"Parameter '{name}' contains a newline.")
        if "\t" in value:
            errors.append(f"Parameter '{name}' contains a tab.")
        if _SPACES_RE.search(value):
            errors.append(f"Parameter '{name}' contains more than four consecutive spaces.")
    body = template.body_text or ""
    for placeholder in sorted(set(_PLACEHOLDER_RE.findall(body)) - seen):
        errors.append(f"The body uses {{{{{placeholder}}}}}, which {label} does not declare.")

    def substitute(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        return value if isinstance(value, str) else m.group(0)

    text = _PLACEHOLDER_RE.sub(substitute, body)
    if len(text) > MAX_BODY_LENGTH:
        errors.append(f"The body is {len(text)} characters after substitution (maximum {MAX_BODY_LENGTH}).")
    return errors, text


def template_render(*, template: WhatsAppTemplate, values: dict[str, str]) -> Rendered:
    """Validate `values` against `template` (DESIGN invariant 5) and render its body.

    Returns the parameters in the template's declared order and the body with values substituted.
    Raises TemplateValidationError listing every problem (missing / unexpected / empty parameters,
    newlines, tabs, more than four consecutive spaces, body over 1024 characters, not approved / active,
    no language)."""
    errors, text = template_problems(template=template, values=values)
    if errors:
        raise TemplateValidationError(
            f"Template '{template.name}' ({template.language or 'no language'}) is invalid: " + " ".join(errors),
            errors=errors,
            extra={"template": template.name, "language": template.language},
        )
    parameters = [(str(name), values[str(name)]) for name in template.parameters or []]
    return Rendered(template=template, parameters=parameters, text=text)


# --- Admin support --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    text: str
    errors: list[str]
    resolved: dict[str, str]
    resolve_error: str


def template_preview(*, template: WhatsAppTemplate) -> Preview:
    """The body rendered from `sample_values` with every validation problem, plus what the data source gives
    for its sample context (or why it failed). Never raises for a bad template: showing the problem is the
    point."""
    samples = {str(k): v for k, v in (template.sample_values or {}).items()}
    errors, text = template_problems(template=template, values=samples)
    resolved: dict[str, str] = {}
    resolve_error = ""
    if template.data_source is not None:
        context = {str(k): str(v) for k, v in (template.data_source.sample_context or {}).items()}
        try:
            resolved = template_values_resolve(template=template, context=context)
        except DataSourceError as exc:
            resolve_error = exc.message
    return Preview(text=text, errors=errors, resolved=resolved, resolve_error=resolve_error)


@dataclass(frozen=True)
class DataSourceTest:
    row: dict[str, Any] | None
    error: str
    elapsed_ms: int


def datasource_test(*, data_source: DataSource, context: dict[str, str]) -> DataSourceTest:
    """Run `data_source` for `context` (the admin's "test query"): its row, or the error message."""
    started = time.monotonic()
    try:
        row = datasource_run(data_source=data_source, context=context)
        error = ""
    except DataSourceError as exc:
        row, error = None, exc.message
    return DataSourceTest(row=row, error=error, elapsed_ms=int((time.monotonic() - started) * 1000))


def demo_search_text_refresh(*, obj: DemoEvent | DemoMinistry | DemoDonationMethod) -> None:
    """Recompute a demo row's accent-free `search_text` (what the demo data sources LIKE against)."""
    from .matching import normalize

    if isinstance(obj, DemoEvent):
        obj.search_text = normalize(f"{obj.name} {obj.description}")
    elif isinstance(obj, DemoMinistry):
        obj.search_text = normalize(f"ministerio de {obj.name} {obj.leader}")
    else:
        obj.search_text = normalize(obj.name)
