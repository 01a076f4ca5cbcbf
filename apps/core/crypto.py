"""Secrets at rest: Fernet (cryptography) under FIELD_ENCRYPTION_KEY."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: str, secret_key: str) -> MultiFernet:
    if keys:
        return MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
    if not settings.DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is required to store secrets")
    # Development only: derive a key so `make run` works without configuration.
    derived = base64.urlsafe_b64encode(hashlib.sha256(secret_key.encode()).digest())
    return MultiFernet([Fernet(derived)])


def fernet() -> MultiFernet:
    """The current cipher. Several comma-separated keys: the first encrypts, all decrypt (rotation)."""
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


def secret_encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured("a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY") from exc


def secret_mask(plaintext: str) -> str:
    if not plaintext:
        return ""
    return "••••" + plaintext[-4:] if len(plaintext) > 8 else "••••"


class EncryptedTextField(models.TextField):
    """Stores Fernet ciphertext; Python code sees the plaintext. Never put it in a query filter."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return secret_decrypt(value)

    def get_prep_value(self, value):
        if value in (None, ""):
            return value
        return secret_encrypt(str(value))
