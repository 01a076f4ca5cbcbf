"""Builders for the webhooks Meta sends us: JSON deliveries plus `X-Hub-Signature-256`.

The signature is HMAC-SHA256 of the exact body bytes with the app secret, as Meta computes it. Realistic
payloads live in tests/fixtures/meta/*.json; these builders make fresh ones (new wamids) for pipeline tests.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

from .meta import APP_SECRET, DISPLAY_PHONE_NUMBER, PHONE_NUMBER_ID

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "meta"
WEBHOOK_PATH = "/api/v1/whatsapp/webhook/meta/"
WABA_ID = "102290129340398"


def meta_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def new_wamid() -> str:
    return "wamid.HBgM" + uuid.uuid4().hex.upper()


def meta_text_message(*, body: str = "Hola", sender: str = "254700000001", message_id: str | None = None) -> dict:
    return {
        "from": sender.lstrip("+"),
        "id": message_id or new_wamid(),
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": body},
    }


def meta_status(
    *, message_id: str, status: str, recipient: str = "254700000001", error_code: int | None = None
) -> dict:
    item: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient.lstrip("+"),
    }
    if status in ("sent", "delivered", "read"):
        item["conversation"] = {"id": uuid.uuid4().hex, "origin": {"type": "service"}}
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    if error_code is not None:
        item["errors"] = [
            {
                "code": error_code,
                "title": "Re-engagement message" if error_code == 131047 else "Error",
                "message": "Re-engagement message" if error_code == 131047 else "Error",
                "error_data": {
                    "details": (
                        "Message failed to send because more than 24 hours have passed since the customer "
                        "last replied to this number."
                    )
                },
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
    return item


def meta_delivery(
    *,
    messages: list[dict] | None = None,
    statuses: list[dict] | None = None,
    contacts: list[dict] | None = None,
    profile_name: str = "Wanjiku",
) -> dict:
    """One webhook delivery (one entry, one change) with these messages and/or statuses."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages:
        value["contacts"] = contacts or [
            {"profile": {"name": profile_name}, "wa_id": wa_id} for wa_id in dict.fromkeys(m["from"] for m in messages)
        ]
        value["messages"] = copy.deepcopy(messages)
    if statuses:
        value["statuses"] = copy.deepcopy(statuses)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
    }


def meta_signature(body: bytes, *, app_secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def meta_signed(payload: dict | bytes, *, app_secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    """(body bytes, headers for the Django test client)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {"HTTP_X_HUB_SIGNATURE_256": meta_signature(body, app_secret=app_secret)}


def meta_post(client, payload: dict | bytes, *, path: str = WEBHOOK_PATH, **kwargs: Any):
    body, headers = meta_signed(payload, **kwargs)
    return client.post(path, data=body, content_type="application/json", **headers)
