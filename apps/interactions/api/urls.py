from __future__ import annotations

from django.urls import path

from .history import HistoryApi, MessageApi
from .interactions import InteractionsApi
from .send import SendApi
from .statistics import StatisticsApi
from .templates import TemplatesApi, TemplateTestApi

urlpatterns = [
    path("statistics/", StatisticsApi.as_view(), name="api-statistics"),
    path("history/", HistoryApi.as_view(), name="api-history"),
    path("interactions/", InteractionsApi.as_view(), name="api-interactions"),
    path("templates/", TemplatesApi.as_view(), name="api-templates"),
    path("templates/test/", TemplateTestApi.as_view(), name="api-templates-test"),
    path("send/", SendApi.as_view(), name="api-send"),
    path("messages/<int:message_id>/", MessageApi.as_view(), name="api-message"),
]
