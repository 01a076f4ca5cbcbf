"""Twilio WhatsApp (Programmable Messaging) channel: form-encoded webhooks in (`inbound`), REST Messages API out
(`outbound`).

Inbound and status callbacks are verified with twilio's own `RequestValidator` (Twilio asks integrators not
to reimplement it: it adds parameters without notice). Sends go through the twilio library's `Client` with an
HTTP client that rewrites the scheme and host to `TWILIO_API_BASE_URL`, so tests and a proxy deployment run the
same library code as production. Twilio REST POSTs are not idempotent: a timeout after the request left is
reported as ambiguous and never resent.
"""

from __future__ import annotations

from .channel import TwilioChannel

__all__ = ["TwilioChannel"]
