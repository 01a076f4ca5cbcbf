"""Meta WhatsApp Cloud API channel: signed JSON webhooks in (`inbound`), Graph API `/{phone_number_id}/messages`
out (`outbound`).

The webhook is verified with HMAC-SHA256 of the raw body keyed with the app secret (`X-Hub-Signature-256`);
the GET subscription handshake echoes `hub.challenge`. One delivery may carry several entries × changes ×
messages / statuses (Meta batches), and every one is parsed; an item that cannot be read is logged and
skipped. Sends use httpx with explicit timeouts; Graph POSTs are not idempotent, so a timeout after the request
left is ambiguous and never resent.
"""

from __future__ import annotations

from .channel import MetaChannel

__all__ = ["MetaChannel"]
