"""Event Grid payloads exactly as ACS Advanced Messaging delivers them (reference doc §2).

Builders return one event (a dict in the Event Grid schema); a delivery is a JSON *list* of them:
`client.post(webhook_url(), [received_event(text="Hola")], content_type="application/json")`.
`as_cloud_event(event)` converts one to the CloudEvents 1.0 envelope. Every event gets a fresh `id` and, for
messages, a fresh `data.messageId`, so two calls never collide unless a test passes the same ids on purpose.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

WEBHOOK_SECRET = "eventgrid-test-secret-6f1c2a"
# The ACS channel registration id the emulator fixture configures (inbound `data.to`, outbound `from`).
CHANNEL_ID = "11111111-2222-4333-8444-555555555555"
ACS_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/relay-rg"
    "/providers/microsoft.communication/communicationservices/relay-acs"
)

RECEIVED = "Microsoft.Communication.AdvancedMessageReceived"
STATUS_UPDATED = "Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"


def webhook_url(secret: str = WEBHOOK_SECRET) -> str:
    """The Event Grid subscription's endpoint path, with the secret in `?code=` as configured in Azure."""
    return f"/api/v1/whatsapp/webhook/?code={secret}"


def _timestamp(value: datetime | str | None) -> str:
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value


def _event_time() -> str:
    # Event Grid's own format: 7 fractional digits and a Z.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def received_event(
    *,
    text: str | None = "Hola",
    sender: str | None = "254700000001",
    bsuid: str = "",
    message_id: str | None = None,
    message_type: str = "text",
    media: dict[str, Any] | None = None,
    button: dict[str, Any] | None = None,
    interactive: dict[str, Any] | None = None,
    reaction: dict[str, Any] | None = None,
    location: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    received_at: datetime | str | None = None,
    channel_id: str = CHANNEL_ID,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One `AdvancedMessageReceived` event. `sender` is digits without `+` (may be "" or None since 2026).

    `text` goes to `data.content` only for `message_type="text"` (other kinds carry their own objects).
    """
    data: dict[str, Any] = {
        "channelType": "whatsapp",
        "messageId": message_id or str(uuid.uuid4()),
        "messageType": message_type,
        "from": sender,
        "to": channel_id,
        "receivedTimestamp": _timestamp(received_at),
    }
    if bsuid:
        data["fromBSUID"] = bsuid
    if message_type == "text" and text is not None:
        data["content"] = text
    for key, value in (
        ("media", media),
        ("button", button),
        ("interactive", interactive),
        ("reaction", reaction),
        ("location", location),
        ("context", context),
    ):
        if value is not None:
            data[key] = value
    sender_part = bsuid or sender or ""
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": ACS_RESOURCE_ID,
        "subject": f"advancedMessage/sender/{sender_part}/recipient/{channel_id}",
        "data": data,
        "eventType": RECEIVED,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": _event_time(),
    }


def status_event(
    *,
    message_id: str,
    status: str = "Delivered",
    error_code: str | None = None,
    error_message: str | None = None,
    to: str = "254700000001",
    to_bsuid: str = "",
    received_at: datetime | str | None = None,
    channel_id: str = CHANNEL_ID,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One `AdvancedMessageDeliveryStatusUpdated` event for the message `send()` answered with `message_id`.

    `status` is capitalised as ACS sends it: Sent | Delivered | Read | Failed. `error_code` is Meta's code as a
    string (e.g. "131047").
    """
    data: dict[str, Any] = {
        "messageId": message_id,
        "status": status,
        "channelType": "whatsapp",
        "from": channel_id,
        "to": to,
        "receivedTimestamp": _timestamp(received_at),
    }
    if to_bsuid:
        data["toBSUID"] = to_bsuid
    if error_code is not None or error_message is not None:
        data["error"] = {"channelCode": error_code or "", "channelMessage": error_message or ""}
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": ACS_RESOURCE_ID,
        "subject": f"advancedMessage/{message_id}/status/{status}",
        "data": data,
        "eventType": STATUS_UPDATED,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": _event_time(),
    }


def validation_event(code: str) -> dict[str, Any]:
    """The `SubscriptionValidationEvent` Event Grid POSTs when a subscription is created (header
    `aeg-event-type: SubscriptionValidation`). The endpoint must answer 200 `{"validationResponse": code}`."""
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000",
        "subject": "",
        "data": {
            "validationCode": code,
            "validationUrl": (
                "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/relay/validate"
                f"?id={code}&t=2026-01-01T00:00:00.0000000Z&apiVersion=2018-05-01-preview&token=abc"
            ),
        },
        "eventType": SUBSCRIPTION_VALIDATION,
        "eventTime": _event_time(),
        "metadataVersion": "1",
        "dataVersion": "1",
    }


def as_cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same event in the CloudEvents 1.0 schema (`eventDeliverySchema: CloudEventSchemaV1_0`)."""
    return {
        "specversion": "1.0",
        "type": event["eventType"],
        "source": event.get("topic", ACS_RESOURCE_ID),
        "id": event["id"],
        "time": event.get("eventTime") or _event_time(),
        "subject": event.get("subject", ""),
        "datacontenttype": "application/json",
        "data": event["data"],
    }


# --- convenience builders for the non-text kinds (payload shapes from the ACS Event Grid docs) -----------
def image_event(*, media_id: str | None = None, mime_type: str = "image/jpeg", caption: str = "", **kw) -> dict:
    media: dict[str, Any] = {"mimeType": mime_type, "id": media_id or str(uuid.uuid4())}
    if caption:
        media["caption"] = caption
    return received_event(message_type="image", media=media, **kw)


def document_event(
    *, media_id: str | None = None, mime_type: str = "application/pdf", file_name: str = "file.pdf", **kw
) -> dict:
    media = {"mimeType": mime_type, "id": media_id or str(uuid.uuid4()), "fileName": file_name}
    return received_event(message_type="document", media=media, **kw)


def button_event(*, text: str = "Sí", payload: str = "yes", **kw) -> dict:
    return received_event(message_type="button", button={"text": text, "payload": payload}, **kw)


def button_reply_event(*, reply_id: str = "opt-1", title: str = "Opción 1", **kw) -> dict:
    interactive = {"type": "buttonReply", "buttonReply": {"id": reply_id, "title": title}}
    return received_event(message_type="interactive", interactive=interactive, **kw)


def list_reply_event(*, reply_id: str = "row-1", title: str = "Fila 1", description: str = "", **kw) -> dict:
    interactive = {"type": "listReply", "listReply": {"id": reply_id, "title": title, "description": description}}
    return received_event(message_type="interactive", interactive=interactive, **kw)
