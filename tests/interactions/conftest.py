"""Fixtures of the pipeline tests: demo templates and intents, the sandbox channel, and a broker drain."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from django.db import connection

from apps.interactions.models import InboundDelivery
from apps.message_templates.models import TemplateCategory, WhatsAppTemplate
from apps.message_templates.services import intent_index_invalidate

from .factories import IntentFactory, KeywordFactory, TemplateFactory

QUEUES = ("default", "outbound", "ai")


def deliveries_waiting() -> bool:
    return connection.vendor == "postgresql" and InboundDelivery.objects.exists()


@dataclass
class Demo:
    event_info: WhatsAppTemplate
    request_received: WhatsAppTemplate
    donations: WhatsAppTemplate


@pytest.fixture
def demo_templates(settings) -> Demo:
    """Three templates: an event template filled from the message (name + entity), the request-received
    fallback, and a marketing template; intents `evento` and `donativos` with Spanish keywords."""
    settings.FALLBACK_TEMPLATE_NAME = "vea_request_received"
    event_info = TemplateFactory(
        name="vea_event_info",
        parameters=["nombre", "tema"],
        parameter_mapping={"nombre": "contact_name", "tema": "entity"},
        static_values={"nombre": "amigo", "tema": "nuestros eventos"},
        body_text="Hola {{nombre}}, te contamos sobre {{tema}}.",
    )
    request_received = TemplateFactory(
        name="vea_request_received",
        parameters=["nombre"],
        parameter_mapping={"nombre": "contact_name"},
        static_values={"nombre": "amigo"},
        body_text="Hola {{nombre}}, recibimos tu mensaje.",
    )
    donations = TemplateFactory(
        name="vea_info_donativos",
        category=TemplateCategory.MARKETING,
        parameters=[],
        body_text="Puedes donar en nuestra web.",
    )
    evento = IntentFactory(name="evento", description="Events and conferences", template=event_info, priority=1)
    KeywordFactory(intent=evento, phrase="evento")
    KeywordFactory(intent=evento, phrase="conferencia")
    donativos = IntentFactory(name="donativos", description="Donations", template=donations)
    KeywordFactory(intent=donativos, phrase="donativo")
    KeywordFactory(intent=donativos, phrase="donar")
    intent_index_invalidate()
    yield Demo(event_info=event_info, request_received=request_received, donations=donations)
    intent_index_invalidate()


@pytest.fixture
def sandbox(settings):
    settings.SANDBOX_ENABLED = True
    settings.DEFAULT_CHANNEL = "sandbox"
    return settings


@pytest.fixture
def drain(broker, worker):
    """Wait until the pipeline's queues (including delayed retries) are empty, no deferred webhook delivery waits
    for the worker's pump (which sends its task), and the worker is idle."""

    def _drain(timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while quiet_rounds < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("the pipeline queues did not drain")
            busy = False
            for queue in QUEUES:
                if broker.do_qsize(queue):
                    busy = True
                    broker.join(queue, timeout=int(max(0.1, deadline - time.monotonic()) * 1000))
            worker.join()
            if not busy and deliveries_waiting():
                busy = True
                time.sleep(0.01)  # polled until the deadline: the pump's task is not in a queue yet
            quiet_rounds = 0 if busy else quiet_rounds + 1

    return _drain
