"""Per-client API throttling (the rate is REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_client"])."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class ApiClientThrottle(SimpleRateThrottle):
    """One bucket per authenticated user (so per token), or per IP for anonymous callers.

    The rate is read on each request rather than at import, so a changed setting takes effect at once.
    """

    scope = "api_client"

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return None if rate is None else str(rate)

    def get_cache_key(self, request, view) -> str:
        ident = f"user:{request.user.pk}" if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
