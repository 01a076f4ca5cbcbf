"""The sandbox chat page: a WhatsApp-like web chat that talks to the sandbox API (apps.interactions.apis).

Served only when SANDBOX_ENABLED (checked per request, so tests and settings changes apply at once).
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

DEFAULT_PHONE = "+254700000001"


@require_GET
def sandbox_page(request: HttpRequest) -> HttpResponse:
    if not settings.SANDBOX_ENABLED:
        raise Http404("The sandbox is not enabled (SANDBOX_ENABLED).")
    response = render(request, "sandbox/chat.html", {"default_phone": DEFAULT_PHONE})
    # The page only runs its own script: no inline code, no third-party origins.
    response["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return response
