"""Interaction data with known figures: contacts, inbound messages, decisions and replies at chosen times."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import factory
from django.db.models import Case, DateTimeField, Value, When

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


def _created_at_set(model, moments: dict[int, datetime]) -> None:
    """Set created_at (auto_now_add) of many rows in one UPDATE."""
    if moments:
        whens = [When(pk=pk, then=Value(moment)) for pk, moment in moments.items()]
        model.objects.filter(pk__in=moments).update(created_at=Case(*whens, output_field=DateTimeField()))


def interactions_generate(*, start: datetime, hours: float, count: int, seed: int = 7) -> list[Interaction]:
    """`count` interactions spread at random over `hours` hours from `start`: 3 channels, every main route,
    4 intents with their templates, latencies over several decades, replies in every status with error codes.
    Bulk-inserted (a few queries whatever the count).
    """
    rng = random.Random(seed)
    contacts = {channel: [ContactFactory(channel=channel) for _ in range(12)] for channel in ("acs", "twilio", "meta")}
    specs = []
    for _ in range(count):
        channel = rng.choice(["acs", "acs", "twilio", "meta"])
        route = rng.choices(["template", "ai", "unmatched", "flow", "blocked"], weights=[50, 25, 12, 8, 5])[0]
        intent = rng.choice(list(INTENTS)) if route in ("template", "flow") else rng.choice(["", "hours", "prices"])
        template = INTENTS.get(intent, "") if route == "template" else ""
        status = rng.choices(["sent", "delivered", "read", "failed", "queued"], weights=[10, 30, 45, 10, 5])[0]
        specs.append(
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
    serial = next(_serial)
    inbound = Message.objects.bulk_create(
        Message(
            contact=spec.contact,
            direction=Direction.INBOUND,
            channel=spec.channel,
            provider_message_id=f"wamid.bulk.{serial}.{i}",
            text=spec.text,
            status=MessageStatus.PROCESSED,
        )
        for i, spec in enumerate(specs)
    )
    replies = Message.objects.bulk_create(
        Message(
            contact=spec.contact,
            direction=Direction.OUTBOUND,
            channel=spec.channel,
            provider_message_id=f"wamid.bulk.{serial}.r{i}",
            text="respuesta",
            template_name=spec.template_name,
            status=spec.reply_status,
            error_code=spec.reply_error_code,
            in_reply_to=inbound[i],
        )
        for i, spec in enumerate(specs)
        if spec.reply_status
    )
    reply_of = iter(replies)
    rows = Interaction.objects.bulk_create(
        Interaction(
            message=inbound[i],
            contact=spec.contact,
            channel=spec.channel,
            intent=spec.intent,
            route=spec.route,
            template_name=spec.template_name,
            reply=next(reply_of) if spec.reply_status else None,
            processing_ms=spec.processing_ms,
            success=spec.success,
        )
        for i, spec in enumerate(specs)
    )
    _created_at_set(Message, {m.pk: spec.created_at for m, spec in zip(inbound, specs, strict=True)})
    sent_at = {
        m.pk: spec.created_at + timedelta(milliseconds=spec.processing_ms)
        for m, spec in zip(inbound, specs, strict=True)
    }
    _created_at_set(Message, {r.pk: sent_at[r.in_reply_to_id] for r in replies})
    _created_at_set(Interaction, {row.pk: spec.created_at for row, spec in zip(rows, specs, strict=True)})
    for row, spec in zip(rows, specs, strict=True):
        row.created_at = spec.created_at
    return rows


_serial = itertools.count()
