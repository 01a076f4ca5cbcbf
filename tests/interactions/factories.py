"""factory_boy factories for the pipeline's models (and the few template rows its tests need)."""

from __future__ import annotations

import uuid

import factory
from django.utils import timezone

from apps.interactions.models import Contact, Direction, Interaction, Message, MessageStatus, StatusUpdate, WebhookLog
from tests.message_templates import factories as message_templates_factories


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    phone = factory.Sequence(lambda n: f"+2547{n:08d}")
    profile_name = factory.Faker("first_name")
    channel = "sandbox"
    last_inbound_at = factory.LazyFunction(timezone.now)


class InboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    contact = factory.SubFactory(ContactFactory)
    direction = Direction.INBOUND
    channel = factory.SelfAttribute("contact.channel")
    provider_message_id = factory.LazyFunction(lambda: f"in-{uuid.uuid4()}")
    kind = "text"
    text = "Hola"
    status = MessageStatus.RECEIVED
    received_at = factory.LazyFunction(timezone.now)


class OutboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    contact = factory.SubFactory(ContactFactory)
    direction = Direction.OUTBOUND
    channel = factory.SelfAttribute("contact.channel")
    kind = "text"
    text = "Hola"
    status = MessageStatus.QUEUED
    idempotency_key = factory.LazyFunction(lambda: str(uuid.uuid4()))
    received_at = factory.LazyFunction(timezone.now)


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    message = factory.SubFactory(InboundMessageFactory)
    contact = factory.SelfAttribute("message.contact")
    channel = factory.SelfAttribute("message.channel")
    route = "template"


class StatusUpdateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StatusUpdate

    channel = "acs"
    provider_message_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    status = "delivered"
    occurred_at = factory.LazyFunction(timezone.now)


class WebhookLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookLog

    channel = "acs"
    method = "POST"
    path = "/api/v1/whatsapp/webhook/"
    body = "[]"
    status_code = 200


class TemplateFactory(message_templates_factories.TemplateFactory):
    """Templates are looked up by (name, language) here: pipeline tests name the demo templates."""

    class Meta:
        django_get_or_create = ("name", "language")


class IntentFactory(message_templates_factories.IntentFactory):
    description = "An intent"
    template = factory.SubFactory(TemplateFactory)


class KeywordFactory(message_templates_factories.KeywordFactory):
    intent = factory.SubFactory(IntentFactory)
