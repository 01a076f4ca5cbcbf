"""The worker's first step for deferred webhook deliveries, run in the test's thread (no broker, no worker)."""

from __future__ import annotations

from apps.interactions.models import InboundDelivery
from apps.interactions.services import inbound_deliveries_materialize


def deliveries_store() -> int:
    """Store every waiting webhook delivery as its contact, message and WebhookLog rows; returns how many.

    Raises what the worker would raise: a delivery the webhook accepted but the worker cannot store fails here.
    """
    return sum(
        inbound_deliveries_materialize(delivery_id=pk)
        for pk in list(InboundDelivery.objects.order_by("pk").values_list("pk", flat=True))
    )
