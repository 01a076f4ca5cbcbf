"""API access: tokens for API clients."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from apps.core.exceptions import NotFoundError

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
