"""Data source values as template text: dates in words in the template's language, the rest as str."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

_MONTHS = {
    "es": [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}
_WEEKDAYS = {
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}


def value_format(value: Any, *, language: str = "es") -> str:
    """A data source value as template text: dates in words in the template's language, others as str."""
    lang = language.split("_")[0].lower()
    lang = lang if lang in _MONTHS else "en"
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
        value = timezone.localtime(value)
        day = _format_date(value.date(), lang)
        return f"{day}, {value:%H:%M}"
    if isinstance(value, date):
        return _format_date(value, lang)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return ("sí" if value else "no") if lang == "es" else ("yes" if value else "no")
    return str(value).strip()


def _format_date(value: date, lang: str) -> str:
    weekday = _WEEKDAYS[lang][value.weekday()]
    month = _MONTHS[lang][value.month - 1]
    if lang == "es":
        return f"{weekday} {value.day} de {month} de {value.year}"
    return f"{weekday} {value.day} {month} {value.year}"
