"""Interaction data with known figures: contacts, inbound messages, decisions and replies at chosen times."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import factory

from apps.interactions.models import Contact, Direction, Interaction, Message, MessageStatus


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    phone = factory.Sequence(lambda n: f"+2547{n:08d}")
    profile_name = factory.Sequence(lambda n: f"Contact {n}")
    channel = "acs"


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    contact = factory.SubFactory(ContactFactory)
    direction = Direction.INBOUND
    channel = "acs"
    provider_message_id = factory.Sequence(lambda n: f"wamid.{n}")
    text = "hola"
    status = MessageStatus.PROCESSED


def at(obj, moment: datetime):
    """Move a row's created_at (auto_now_add) to `moment`."""
    type(obj).objects.filter(pk=obj.pk).update(created_at=moment)
    obj.created_at = moment
    return obj


@dataclass
class Spec:
    created_at: datetime
    channel: str = "acs"
    route: str = "template"
    intent: str = ""
    template_name: str = ""
    success: bool = True
    processing_ms: int = 100
    reply_status: str | None = "delivered"
    reply_error_code: str = ""
    contact: Contact | None = None
    text: str = "hola"


def interaction_create(spec: Spec) -> Interaction:
    contact = spec.contact or ContactFactory(channel=spec.channel)
    inbound = at(MessageFactory(contact=contact, channel=spec.channel, text=spec.text), spec.created_at)
    reply = None
    if spec.reply_status:
        reply = MessageFactory(
            contact=contact,
            direction=Direction.OUTBOUND,
            channel=spec.channel,
            status=spec.reply_status,
            error_code=spec.reply_error_code,
            in_reply_to=inbound,
            text="respuesta",
            template_name=spec.template_name,
        )
        at(reply, spec.created_at + timedelta(milliseconds=spec.processing_ms))
    interaction = Interaction.objects.create(
        message=inbound,
        contact=contact,
        channel=spec.channel,
        intent=spec.intent,
        route=spec.route,
        template_name=spec.template_name,
        reply=reply,
        processing_ms=spec.processing_ms,
        success=spec.success,
    )
    return at(interaction, spec.created_at)


INTENTS = {"booking": "booking_options", "hours": "opening_hours", "prices": "price_list", "greeting": "welcome"}


def interactions_generate(*, start: datetime, hours: int, count: int, seed: int = 7) -> list[Interaction]:
    """`count` interactions spread at random over `hours` hours from `start`: 3 channels, every main route,
    4 intents with their templates, latencies over several decades, replies in every status with error codes.
    """
    rng = random.Random(seed)
    contacts = {channel: [ContactFactory(channel=channel) for _ in range(12)] for channel in ("acs", "twilio", "meta")}
    rows = []
    for _ in range(count):
        channel = rng.choice(["acs", "acs", "twilio", "meta"])
        route = rng.choices(["template", "ai", "unmatched", "flow", "blocked"], weights=[50, 25, 12, 8, 5])[0]
        intent = rng.choice(list(INTENTS)) if route in ("template", "flow") else rng.choice(["", "hours", "prices"])
        template = INTENTS.get(intent, "") if route == "template" else ""
        status = rng.choices(["sent", "delivered", "read", "failed", "queued"], weights=[10, 30, 45, 10, 5])[0]
        rows.append(
            interaction_create(
                Spec(
                    created_at=start + timedelta(seconds=rng.uniform(0, hours * 3600)),
                    channel=channel,
                    route=route,
                    intent=intent,
                    template_name=template,
                    success=rng.random() > 0.08,
                    processing_ms=int(rng.lognormvariate(5.3, 1.1)),
                    reply_status=None if route == "blocked" else status,
                    reply_error_code=rng.choice(["131047", "131026", "131049"]) if status == "failed" else "",
                    contact=rng.choice(contacts[channel]),
                )
            )
        )
    return rows
