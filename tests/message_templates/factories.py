"""factory_boy factories for templates, intents, keywords and data sources."""

from __future__ import annotations

import factory

from apps.message_templates.models import (
    DataSource,
    DataSourceKind,
    Intent,
    Keyword,
    TemplateCategory,
    TemplateStatus,
    WhatsAppTemplate,
)


class DataSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataSource

    name = factory.Sequence(lambda n: f"source_{n}")
    kind = DataSourceKind.SQL
    query = "SELECT 1 AS one"
    timeout_ms = 2000


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WhatsAppTemplate

    name = factory.Sequence(lambda n: f"template_{n}")
    language = "es"
    category = TemplateCategory.UTILITY
    status = TemplateStatus.APPROVED
    active = True
    parameters = factory.LazyFunction(list)
    body_text = "Hola"


class IntentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Intent

    name = factory.Sequence(lambda n: f"intent_{n}")
    template = factory.SubFactory(TemplateFactory)


class KeywordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Keyword

    intent = factory.SubFactory(IntentFactory)
    language = "es"
    phrase = factory.Sequence(lambda n: f"palabra{n}")
