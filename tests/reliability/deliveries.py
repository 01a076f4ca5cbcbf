"""Signed inbound webhooks as a provider sends them over real HTTP (to gunicorn), one per (channel, number)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

from tests.emulators import acs_events, meta_events, twilio_requests

CHANNELS = ("acs", "twilio", "meta")
TEXT = "¿Cuándo es la conferencia?"


@dataclass(frozen=True)
class Delivery:
    channel: str
    # E.164 sender, distinct per delivery, so a reply can be traced back to its message.
    sender: str
    path: str
    body: bytes
    headers: dict[str, str]


def sender_for(index: int) -> str:
    return f"+2547{11_000_000 + index:08d}"


def delivery(channel: str, index: int, *, base_url: str, text: str = TEXT) -> Delivery:
    sender = sender_for(index)
    if channel == "acs":
        event = acs_events.received_event(text=text, sender=sender.lstrip("+"))
        return Delivery(
            channel,
            sender,
            acs_events.webhook_url(),
            json.dumps([event]).encode(),
            {"Content-Type": "application/json"},
        )
    if channel == "twilio":
        path = twilio_requests.INBOUND_PATH
        form = twilio_requests.twilio_inbound_form(body=text, sender=sender)
        signature = twilio_requests.twilio_signature(base_url + path, form)
        headers = {"Content-Type": twilio_requests.FORM_CONTENT_TYPE, "X-Twilio-Signature": signature}
        return Delivery(channel, sender, path, urlencode(form).encode(), headers)
    message = meta_events.meta_text_message(body=text, sender=sender.lstrip("+"))
    body = json.dumps(meta_events.meta_delivery(messages=[message])).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_events.meta_signature(body)}
    return Delivery("meta", sender, meta_events.WEBHOOK_PATH, body, headers)


def reply_recipient(channel: str, request) -> str:
    """The E.164 recipient of a reply as the emulator recorded it."""
    if channel == "acs":
        return "+" + request.to.lstrip("+")
    if channel == "twilio":
        return request.form()["To"][0].removeprefix("whatsapp:")
    return "+" + request.json()["to"].lstrip("+")


def replies(channel: str, emulator) -> list[str]:
    """Recipients of every reply the provider accepted (ACS: actual deliveries, replays excluded)."""
    if channel == "acs":
        return [reply_recipient("acs", d) for d in emulator.deliveries]
    if channel == "twilio":
        return [reply_recipient("twilio", r) for r in emulator.message_requests()]
    return [reply_recipient("meta", r) for r in emulator.message_requests()]
