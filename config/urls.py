from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.apis import health
from apps.interactions.statistics.admin_views import dashboard_view

urlpatterns = [
    path("health/", health, name="health"),
    path("api/v1/whatsapp/health/", health, name="whatsapp-health"),
    path("api/v1/whatsapp/", include("apps.interactions.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/dashboard/", dashboard_view, name="relay-dashboard"),
    path("admin/", admin.site.urls),
    path("", include("apps.channels.urls")),
]
