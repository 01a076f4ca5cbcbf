"""Who may call the REST API: the `analysts` group reads, the `integrators` group also sends."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

ANALYSTS = "analysts"
INTEGRATORS = "integrators"


def _in_groups(user, names: set[str]) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user.groups.filter(name__in=names).exists()


class IsAnalyst(BasePermission):
    """Reads: statistics, history, interactions, templates, messages. Integrators may read too."""

    message = "Reading the API needs the analysts or integrators group."

    def has_permission(self, request, view) -> bool:
        return _in_groups(request.user, {ANALYSTS, INTEGRATORS})


class IsIntegrator(BasePermission):
    """Sending and test-rendering templates."""

    message = "Sending needs the integrators group."

    def has_permission(self, request, view) -> bool:
        return _in_groups(request.user, {INTEGRATORS})
