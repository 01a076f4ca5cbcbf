"""Media the assistant understands: images (sent to a vision model) and PDFs (text through pypdf)."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
PDF_TYPES = frozenset({"application/pdf"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
# Enough of a PDF for a grounded answer without blowing the prompt up.
PDF_MAX_PROMPT_CHARS = 12_000


class MediaRejected(Exception):
    """The file cannot be used: `reason` is 'too_large', 'unreadable', 'empty' or 'unsupported'."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def media_kind(mime_type: str) -> str:
    mime = (mime_type or "").split(";")[0].strip().lower()
    if mime in IMAGE_TYPES:
        return "image"
    if mime in PDF_TYPES:
        return "pdf"
    if mime.startswith("audio/"):
        return "audio"
    if mime in TEXT_TYPES:
        return "text_file"
    return "unsupported"


def media_read(*, media_path: str) -> bytes:
    """The file's bytes; MediaRejected when missing or larger than AI_MEDIA_MAX_BYTES."""
    path = Path(media_path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaRejected("unreadable") from exc
    if size > settings.AI_MEDIA_MAX_BYTES:
        raise MediaRejected("too_large")
    if size == 0:
        raise MediaRejected("empty")
    return path.read_bytes()


def image_data_url(*, content: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(content).decode()}"


def document_text(*, content: bytes, kind: str) -> str:
    """The text of a PDF or a plain-text attachment; MediaRejected when unreadable or empty."""
    if kind == "pdf":
        return pdf_text(content=content)
    text = content.decode("utf-8", errors="replace").strip()
    if not text:
        raise MediaRejected("empty")
    return text


def pdf_text(*, content: bytes, max_pages: int | None = None) -> str:
    """The text of the first `max_pages` (AI_PDF_MAX_PAGES) pages; MediaRejected when unreadable or textless."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    max_pages = max_pages or settings.AI_PDF_MAX_PAGES
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise MediaRejected("unreadable")
        pages = []
        for number, page in enumerate(reader.pages):
            if number >= max_pages:
                break
            pages.append(page.extract_text() or "")
    except MediaRejected:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        logger.info("pdf unreadable: %s", type(exc).__name__)
        raise MediaRejected("unreadable") from exc
    text = "\n\n".join(p.replace("\x00", "").strip() for p in pages if p.replace("\x00", "").strip())
    if not text:
        raise MediaRejected("empty")
    return text
