"""API access: tokens for API clients, and sending on their behalf exactly once per Idempotency-Key."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from apps.core.exceptions import ApplicationError, ConflictError, NotFoundError
from apps.interactions.models import Contact, Message
from apps.interactions.services import contact_resolve, outbound_template_create, outbound_text_create
from apps.message_templates.services import template_get

from .models import ApiIdempotencyRecord
from .permissions import ANALYSTS, INTEGRATORS

API_GROUPS = (ANALYSTS, INTEGRATORS)


@transaction.atomic
def api_token_create(*, username: str, group: str | None = None, create_user: bool = False) -> Token:
    """The user's API token (created if missing), after adding the user to `group` when given.

    Raises NotFoundError when the user does not exist and `create_user` is false; ValueError for an unknown group.
    """
    if group is not None and group not in API_GROUPS:
        raise ValueError(f"unknown group {group!r}; use one of {', '.join(API_GROUPS)}")
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        if not create_user:
            raise NotFoundError(f"no user named {username!r}")
        user = user_model.objects.create_user(username=username)
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if group is not None:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    token, _ = Token.objects.get_or_create(user=user)
    return token


# Keys derived here are UUIDs (ACS sends them as Repeatability-Request-ID), unique per user and client key.
SEND_KEY_NAMESPACE = uuid.UUID("6f7a1f3e-3d55-4a0e-9a49-2f3d2b7c6e10")


class IdempotencyKeyMissing(ApplicationError):
    code = "IDEMPOTENCY_KEY_REQUIRED"


class IdempotencyKeyConflict(ConflictError):
    code = "IDEMPOTENCY_KEY_REUSED"


def send_message_key(*, user_id: int, client_key: str) -> uuid.UUID:
    return uuid.uuid5(SEND_KEY_NAMESPACE, f"{user_id}:{client_key}")


def _request_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _replay(record: ApiIdempotencyRecord, request_hash: str) -> Message:
    if record.request_hash != request_hash:
        raise IdempotencyKeyConflict(
            "This Idempotency-Key was already used with a different request body.",
            {"idempotency_key": record.client_key},
        )
    message = Message.objects.filter(idempotency_key=str(record.message_key)).first()
    if message is None:  # the first request is still being committed or failed: the client retries
        raise ConflictError(
            "A request with this Idempotency-Key is in progress.", {"idempotency_key": record.client_key}
        )
    return message


def _contact_for(phone: str, channel: str) -> Contact:
    # An existing contact keeps the channel it last wrote from; sending never changes it.
    contact = Contact.objects.filter(phone=phone).first()
    return contact or contact_resolve(channel=channel or settings.DEFAULT_CHANNEL, phone=phone)


def api_send(*, user, client_key: str, data: dict) -> tuple[Message, bool]:
    """Queue the message described by `data` for `user`, once per `client_key`. Returns (message, created).

    Raises IdempotencyKeyConflict (409) when the key was used with another body, WindowClosedError /
    OptedOutError (409), TemplateValidationError (400) and NotFoundError (404, unknown template).
    """
    request_hash = _request_hash(data)
    existing = ApiIdempotencyRecord.objects.filter(user=user, client_key=client_key).first()
    if existing is not None:
        return _replay(existing, request_hash), False
    message_key = send_message_key(user_id=user.pk, client_key=client_key)
    try:
        with transaction.atomic():
            # The unique (user, client_key) makes a concurrent twin wait here, then fail and replay below.
            record = ApiIdempotencyRecord.objects.create(
                user=user, client_key=client_key, message_key=message_key, request_hash=request_hash
            )
            contact = _contact_for(data["phone_number"], data.get("channel") or "")
            common: dict[str, Any] = {
                "contact": contact,
                "channel": data.get("channel") or None,
                "idempotency_key": str(message_key),
            }
            if data.get("template_name"):
                template = template_get(name=data["template_name"], language=data.get("language") or "")
                values = template_values_from(template, data.get("parameters") or {})
                message = outbound_template_create(template=template, values=values, **common)
            else:
                message = outbound_text_create(text=data["message"], **common)
            record.message = message
            record.save(update_fields=["message"])
    except IntegrityError:
        twin = ApiIdempotencyRecord.objects.filter(user=user, client_key=client_key).first()
        if twin is None:
            raise
        return _replay(twin, request_hash), False
    return message, True


def template_values_from(template, parameters) -> dict:
    """Parameters as given (an object by name, or a list in the template's declared order) → values by name."""
    if isinstance(parameters, dict):
        return {str(k): v for k, v in parameters.items()}
    declared = [str(p) for p in template.parameters or []]
    values = dict(zip(declared, parameters, strict=False))
    # Extra positional values are reported by the validation as unexpected parameters.
    values.update({str(i + 1): v for i, v in enumerate(parameters) if i >= len(declared)})
    return values
