"""Application Insights through azure-monitor-opentelemetry, only when a connection string is set.

The web process configures it in config/wsgi.py, each Dramatiq worker process at boot (TelemetryMiddleware).
Spans: Django requests, httpx (OpenAI, Meta, Twilio), the Azure SDK (ACS), psycopg 3 (not bundled by
azure-monitor-opentelemetry, added here) and one span per Dramatiq message, continuing the trace of the
request that enqueued it, so a webhook, its inbound processing and the reply share one operation id.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

import dramatiq
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span

logger = logging.getLogger(__name__)
_configured = False
_configure_lock = threading.Lock()
# Message option that carries the W3C trace context from the enqueuing process to the worker.
TRACE_CONTEXT_OPTION = "otel_context"


def telemetry_configure(*, role: str) -> bool:
    """Configure OpenTelemetry export once per process. Returns True when telemetry is on."""
    global _configured
    connection_string = os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    with _configure_lock:
        if _configured or not connection_string:
            return _configured
        os.environ.setdefault("OTEL_SERVICE_NAME", f"relay-{role}")
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(connection_string=connection_string, logger_name="apps")
        # psycopg (v3) is not among azure-monitor-opentelemetry's bundled instrumentations.
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().instrument(enable_commenter=False)
        _configured = True
        logger.info("telemetry on for relay-%s", role)
        return True


def _tracer():
    return trace.get_tracer("relay.dramatiq")


class TelemetryMiddleware(dramatiq.Middleware):
    """One CONSUMER span per processed message (attributes: message id, actor, queue, retries, the row ids
    it was given), a child of
    the span that was current when the message was enqueued. Without telemetry configured the tracer is
    OpenTelemetry's no-op one and this costs next to nothing."""

    def __init__(self) -> None:
        self._active: dict[str, tuple[Span, Token[Context]]] = {}
        self._lock = threading.Lock()

    def after_process_boot(self, broker) -> None:
        telemetry_configure(role="worker")

    def before_enqueue(self, broker, message, delay) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier:
            message.options[TRACE_CONTEXT_OPTION] = carrier

    def before_process_message(self, broker, message) -> None:
        parent = propagate.extract(message.options.get(TRACE_CONTEXT_OPTION) or {})
        span = _tracer().start_span(
            f"{message.actor_name} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.operation.type": "process",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
                "relay.actor": message.actor_name,
                "relay.retries": int(message.options.get("retries", 0)),
                # Application Insights keeps messaging.* out of customDimensions: repeat the id there.
                "relay.dramatiq_message_id": message.message_id,
                # Actors take row ids (Message, Interaction): they tie the span to the rows. Only integers,
                # so no text (a phone number) can ever land in telemetry.
                "relay.args": ",".join(str(arg) for arg in message.args if type(arg) is int),
            },
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        with self._lock:
            self._active[message.message_id] = (span, token)

    def _finish(self, message, exception: BaseException | None = None) -> None:
        with self._lock:
            active = self._active.pop(message.message_id, None)
        if active is None:
            return
        span, token = active
        if exception is not None:
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end()
        context.detach(token)

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        self._finish(message, exception)

    def after_skip_message(self, broker, message) -> None:
        self._finish(message)
