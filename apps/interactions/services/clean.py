"""Making provider-supplied text storable. PostgreSQL refuses two things valid JSON can carry: NUL characters
(in text and jsonb) and lone UTF-16 surrogates such as "\\ud800" (not encodable as UTF-8). Both are replaced,
so an odd payload is stored (and answered 200) instead of failing the whole delivery with a 500."""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def db_text(value: str) -> str:
    """`value` without NULs and with lone surrogates replaced by U+FFFD."""
    if not value:
        return value
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def db_json(value: Any) -> Any:
    """`value` (decoded JSON) with every string, keys included, passed through db_text."""
    if isinstance(value, str):
        return db_text(value)
    if isinstance(value, dict):
        return {db_text(str(k)): db_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [db_json(v) for v in value]
    return value
