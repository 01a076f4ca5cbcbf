"""Dramatiq spans: one per processed message, continuing the trace of whatever enqueued it."""

from __future__ import annotations

import dramatiq
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from apps.core.telemetry import TRACE_CONTEXT_OPTION

QUEUE = "deploy-telemetry-test"
seen_spans: list = []


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def telemetry_probe(fail: bool) -> None:
    seen_spans.append(trace.get_current_span().get_span_context())
    if fail:
        raise ValueError("probe failed on purpose")


@pytest.fixture(scope="module")
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another tracer provider is already installed in this process")
    return exporter


@pytest.fixture
def spans(exporter):
    exporter.clear()
    seen_spans.clear()
    yield exporter
    exporter.clear()


def test_a_message_is_processed_in_a_consumer_span_that_continues_the_enqueuing_trace(spans, broker, worker):
    with trace.get_tracer("test").start_as_current_span("POST /api/v1/whatsapp/webhook/") as request_span:
        message = telemetry_probe.send(False)
    broker.join(QUEUE, timeout=10_000)
    worker.join()

    [process] = [span for span in spans.get_finished_spans() if span.name == "telemetry_probe process"]
    assert process.kind == SpanKind.CONSUMER
    assert process.context.trace_id == request_span.get_span_context().trace_id
    assert process.parent.span_id == request_span.get_span_context().span_id
    assert dict(process.attributes) == {
        "messaging.system": "dramatiq",
        "messaging.operation.type": "process",
        "messaging.destination.name": QUEUE,
        "messaging.message.id": message.message_id,
        "relay.actor": "telemetry_probe",
        "relay.retries": 0,
        "relay.dramatiq_message_id": message.message_id,
        "relay.args": "",
    }
    assert process.status.status_code == StatusCode.UNSET
    # The actor ran inside that span, so its own HTTP / SQL spans nest under it.
    assert [context.span_id for context in seen_spans] == [process.context.span_id]


def test_a_failing_message_ends_its_span_as_an_error_with_the_exception(spans, broker, worker):
    telemetry_probe.send(True)
    broker.join(QUEUE, timeout=10_000)
    worker.join()

    [process] = [span for span in spans.get_finished_spans() if span.name == "telemetry_probe process"]
    assert process.status.status_code == StatusCode.ERROR
    assert process.status.description == "ValueError"
    [event] = process.events
    assert event.name == "exception"
    assert event.attributes["exception.message"] == "probe failed on purpose"
    # Nothing was current when it was enqueued: a new trace starts in the worker.
    assert process.parent is None


def test_enqueueing_outside_any_span_adds_no_trace_context_to_the_message(spans, broker):
    message = telemetry_probe.send(False)
    assert TRACE_CONTEXT_OPTION not in message.options
    with trace.get_tracer("test").start_as_current_span("request"):
        traced = telemetry_probe.send(False)
    assert traced.options[TRACE_CONTEXT_OPTION]["traceparent"].startswith("00-")
