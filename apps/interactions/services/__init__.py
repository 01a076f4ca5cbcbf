"""Services of the conversation pipeline (writes). Import from here; the sub-modules are an implementation
split, not part of the contract."""

from __future__ import annotations

from .ai import ai_reply_abandon, ai_reply_process, assistant_services
from .contacts import contact_opt_in, contact_opt_out, contact_resolve
from .deferred import deliveries_wake
from .delivery import DeliveryRetryLater, outbound_deliver
from .ingest import (
    STATUS_RANK,
    IngestResult,
    events_ingest,
    headers_redact,
    inbound_deliveries_materialize,
    inbound_record,
    status_apply,
    status_record,
    status_updates_replay,
    webhook_log_write,
)
from .maintenance import PurgeReport, SweepReport, payloads_purge, sweeper_run
from .media import inbound_media_download
from .outbound import (
    conversation_window_open,
    idempotency_key_normalize,
    outbound_media_create,
    outbound_template_create,
    outbound_text_create,
    reply_idempotency_key,
)
from .pipeline import fallback_reply, inbound_process, message_context, template_reply

__all__ = [
    "STATUS_RANK",
    "DeliveryRetryLater",
    "IngestResult",
    "PurgeReport",
    "SweepReport",
    "ai_reply_abandon",
    "ai_reply_process",
    "assistant_services",
    "contact_opt_in",
    "contact_opt_out",
    "contact_resolve",
    "conversation_window_open",
    "deliveries_wake",
    "events_ingest",
    "fallback_reply",
    "headers_redact",
    "idempotency_key_normalize",
    "inbound_deliveries_materialize",
    "inbound_media_download",
    "inbound_process",
    "inbound_record",
    "message_context",
    "outbound_deliver",
    "outbound_media_create",
    "outbound_template_create",
    "outbound_text_create",
    "payloads_purge",
    "reply_idempotency_key",
    "status_apply",
    "status_record",
    "status_updates_replay",
    "sweeper_run",
    "template_reply",
    "webhook_log_write",
]
