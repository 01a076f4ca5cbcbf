"""Inbound media: downloaded by the worker (never the webhook) through the channel's authenticated route."""

from __future__ import annotations

import logging
import mimetypes
import re
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.channels.base import ChannelError, Media
from apps.channels.registry import channel_get

from ..models import Message

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str, mime_type: str) -> str:
    """A file name that cannot leave its folder or surprise a shell: [A-Za-z0-9._-], no leading dots."""
    base = _UNSAFE.sub("_", Path(name or "").name).lstrip("._")[:80]
    if not base:
        base = "media"
    if not Path(base).suffix:
        extension = mimetypes.guess_extension((mime_type or "").split(";")[0].strip()) or ".bin"
        base += extension
    return base


def inbound_media_download(*, message: Message) -> dict:
    """Download the message's media into MEDIA_ROOT/inbound/<id>-<safe name> and record it in Message.media.

    Records size / stored_path (relative to MEDIA_ROOT) / mime_type, or `error`; a failure never raises.
    Returns the updated media dict.
    """
    media = dict(message.media or {})
    try:
        channel = channel_get(message.channel)
        content, mime_type = channel.download_media(
            Media(
                mime_type=media.get("mime_type", ""),
                provider_id=media.get("provider_id", ""),
                url=media.get("url", ""),
                file_name=media.get("file_name", ""),
                caption=media.get("caption", ""),
            )
        )
        if len(content) > settings.MEDIA_MAX_BYTES:
            raise ChannelError(
                f"media is {len(content)} bytes, over MEDIA_MAX_BYTES ({settings.MEDIA_MAX_BYTES})",
                "too_large",
                permanent=True,
            )
        mime_type = mime_type or media.get("mime_type", "")
        relative = Path("inbound") / f"{message.pk}-{safe_file_name(media.get('file_name', ''), mime_type)}"
        target = Path(settings.MEDIA_ROOT) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        media.update(size=len(content), stored_path=str(relative), mime_type=mime_type, error="")
    except Exception as exc:
        logger.warning("media of inbound %s not downloaded: %s", message.pk, exc)
        media["error"] = str(exc)[:500] or type(exc).__name__
    Message.objects.filter(pk=message.pk).update(media=media, updated_at=timezone.now())
    message.media = media
    return media


def media_path(message: Message) -> str:
    """Absolute path of the stored media, or "" when it was not downloaded."""
    stored = (message.media or {}).get("stored_path")
    return str(Path(settings.MEDIA_ROOT) / stored) if stored else ""
