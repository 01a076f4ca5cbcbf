"""ACS Advanced Messaging (WhatsApp) channel: `inbound` reads Event Grid, `outbound` drives the SDK."""

from __future__ import annotations

from .channel import AcsChannel, AcsTemplate

__all__ = ["AcsChannel", "AcsTemplate"]
