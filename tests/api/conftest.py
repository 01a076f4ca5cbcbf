"""API clients for each kind of caller, and interaction data with known figures."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def _client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _user(username: str, group: str | None = None, **extra) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    if group:
        # The groups come from a data migration; a transactional test earlier in the run flushes them.
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def analyst(db) -> User:
    return _user("ana-analyst", "analysts")


@pytest.fixture
def integrator(db) -> User:
    return _user("ian-integrator", "integrators")


@pytest.fixture
def outsider(db) -> User:
    return _user("oscar-outsider")


@pytest.fixture
def staff(db) -> User:
    return _user("stella-staff", is_staff=True)


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def analyst_client(analyst) -> APIClient:
    return _client_for(analyst)


@pytest.fixture
def integrator_client(integrator) -> APIClient:
    return _client_for(integrator)


@pytest.fixture
def outsider_client(outsider) -> APIClient:
    return _client_for(outsider)
