"""The ACS emulator itself refuses what ACS refuses, so the adapter tests above mean something."""

from __future__ import annotations

import uuid

import httpx
import pytest
from azure.communication.messages import NotificationMessagesClient
from azure.communication.messages.models import TextNotificationContent
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from tests.emulators.acs_events import CHANNEL_ID


def sdk_client(emulator, *, endpoint: str | None = None, key: str | None = None) -> NotificationMessagesClient:
    return NotificationMessagesClient(
        endpoint or emulator.base_url, AzureKeyCredential(key or emulator.access_key), retry_total=0
    )


def text(content: str = "hola") -> TextNotificationContent:
    return TextNotificationContent(channel_registration_id=CHANNEL_ID, to=["+254700000001"], content=content)


def test_an_unsigned_request_is_refused(acs_emulator):
    response = httpx.post(
        f"{acs_emulator.base_url}/messages/notifications:send?api-version=2024-08-30",
        json={"kind": "text", "channelRegistrationId": CHANNEL_ID, "to": ["+1"], "content": "x"},
    )
    assert response.status_code == 401
    assert acs_emulator.deliveries == []


def test_a_trailing_slash_on_the_endpoint_breaks_the_hmac_as_the_reference_says(acs_emulator):
    with pytest.raises(ClientAuthenticationError):
        sdk_client(acs_emulator, endpoint=acs_emulator.base_url + "/").send(text())


def test_a_correctly_signed_sdk_request_is_accepted(acs_emulator):
    result = sdk_client(acs_emulator).send(text())
    assert result.receipts[0].to == "+254700000001"
    assert [d.message_id for d in acs_emulator.deliveries] == [result.receipts[0].message_id]


def test_a_repeated_id_with_a_different_body_is_rejected(acs_emulator):
    headers = {"Repeatability-Request-ID": str(uuid.uuid4())}
    client = sdk_client(acs_emulator)
    client.send(text("uno"), headers=headers)
    with pytest.raises(HttpResponseError) as caught:
        client.send(text("dos"), headers=headers)
    assert caught.value.status_code == 400
    assert caught.value.response.headers["Repeatability-Result"] == "rejected"
    assert len(acs_emulator.deliveries) == 1


def test_a_repeated_id_with_the_same_body_replays_the_original_receipt(acs_emulator):
    headers = {"Repeatability-Request-ID": str(uuid.uuid4())}
    client = sdk_client(acs_emulator)

    def raw(pipeline_response, deserialized, response_headers):
        return deserialized, response_headers

    first, first_headers = client.send(text(), headers=headers, cls=raw)
    again, again_headers = client.send(text(), headers=headers, cls=raw)
    assert again.receipts[0].message_id == first.receipts[0].message_id
    assert first_headers["Repeatability-Result"] == again_headers["Repeatability-Result"] == "accepted"
    assert len(acs_emulator.deliveries) == 1 and len(acs_emulator.requests) == 2


def test_a_repeatability_id_that_is_not_a_guid_is_refused(acs_emulator):
    with pytest.raises(HttpResponseError) as caught:
        sdk_client(acs_emulator).send(text(), headers={"Repeatability-Request-ID": "reply:1"})
    assert caught.value.status_code == 400


def test_the_template_list_pages_through_next_links(acs_emulator):
    from azure.communication.messages import MessageTemplateClient

    from tests.emulators.acs import template_item

    acs_emulator.set_templates([template_item(f"t{i}") for i in range(5)], page_size=2)
    client = MessageTemplateClient(acs_emulator.base_url, AzureKeyCredential(acs_emulator.access_key), retry_total=0)
    assert [t.name for t in client.list_templates(CHANNEL_ID)] == ["t0", "t1", "t2", "t3", "t4"]
    assert [r.query.get("skip") for r in acs_emulator.requests] == [None, ["2"], ["4"]]
    assert acs_emulator.refused == []  # the next-link requests are signed too
