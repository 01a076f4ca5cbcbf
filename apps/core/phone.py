"""Phone numbers: E.164 inside Relay, masked in logs. BSUIDs are kept as they are."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

# Business-scoped user ids look like "US.13491208655302741918".
_BSUID_RE = re.compile(r"[A-Z]{2}\.[0-9A-Za-z]{5,64}")


class InvalidPhoneNumber(ValueError):
    pass


def is_bsuid(value: str) -> bool:
    return bool(_BSUID_RE.fullmatch(value or ""))


# Pure and called for every inbound message (twice: by the parser and for the contact), parsing with
# phonenumbers costs ~20 µs; the cache holds the numbers of the contacts writing now. Exceptions are not cached.
@lru_cache(maxsize=8192)
def phone_normalize(raw: str, *, default_region: str | None = None) -> str:
    """Return `raw` as E.164 (`+15551234567`). Accepts `whatsapp:` prefixes and bare digits.

    Raises InvalidPhoneNumber when the value is not a possible number.
    """
    value = (raw or "").strip()
    if value.lower().startswith("whatsapp:"):
        value = value[len("whatsapp:") :]
    value = re.sub(r"[\s().-]", "", value)
    if not value:
        raise InvalidPhoneNumber("empty phone number")
    if len(value) > 20:
        raise InvalidPhoneNumber("phone number too long")
    if not value.startswith("+"):
        value = "+" + value.lstrip("0") if value.isdigit() and not default_region else value
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(str(exc)) from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhoneNumber(f"not a possible phone number: {mask(value)}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(value: str) -> str:
    """`+254712345678` → `+254******678`: enough to tell numbers apart in logs, not to dial them."""
    if not value:
        return value
    if len(value) <= 6:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 7) + value[-3:]


# Used by the log filter: a + followed by 8–15 digits, or a bare run of 10–15 digits.
PHONE_IN_TEXT_RE = re.compile(r"(?<![\w])\+?\d{10,15}(?!\d)")


def mask_in_text(text: str) -> str:
    return PHONE_IN_TEXT_RE.sub(lambda m: mask(m.group(0)), text)
