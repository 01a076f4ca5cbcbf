"""Application Insights through azure-monitor-opentelemetry, only when a connection string is set."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)
_configured = False


def telemetry_configure(*, role: str) -> bool:
    """Configure OpenTelemetry export once per process. Returns True when telemetry is on."""
    global _configured
    connection_string = os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    if _configured or not connection_string:
        return _configured
    os.environ.setdefault("OTEL_SERVICE_NAME", f"relay-{role}")
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(connection_string=connection_string, logger_name="apps")
    _configured = True
    return True
