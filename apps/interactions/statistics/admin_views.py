"""The admin dashboard page (staff only, through the admin site's login)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import admin
from django.template.response import TemplateResponse

from .dashboard import dashboard_get


def _dashboard(request):
    tz = request.GET.get("tz") or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        tz = "UTC"
    context = {**admin.site.each_context(request), "title": "Relay dashboard", "dash": dashboard_get(days=30, tz=tz)}
    return TemplateResponse(request, "admin/interactions/dashboard.html", context)


dashboard_view = admin.site.admin_view(_dashboard)
