"""The knowledge base: documents in, chunks (and, when the provider offers them, embeddings) out."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from django.db import transaction

from apps.assistant.errors import AIPermanentError, AITransientError
from apps.assistant.models import KnowledgeChunk, KnowledgeDocument, search_config_for
from apps.assistant.providers import provider_config_current, provider_embed
from apps.assistant.services.media import MediaRejected, pdf_text

logger = logging.getLogger(__name__)

CHUNK_SIZE = 800
CHUNK_OVERLAP = 160
# Knowledge uploads are curated by an admin, so they may be longer than what a WhatsApp user sends.
UPLOAD_MAX_PAGES = 300
UPLOAD_MAX_BYTES = 20 * 1024 * 1024
UPLOAD_TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".text"})
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
# PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded: PDF extraction produces both.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def knowledge_text_clean(text: str) -> str:
    return _UNSTORABLE.sub("", text or "")


class KnowledgeUploadError(ValueError):
    pass


def knowledge_chunk_text(*, text: str, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Split `text` into passages of about `size` characters along paragraph (then sentence) boundaries.

    Each passage after the first starts with the last sentences (≤ `overlap` characters) of the one before,
    so a fact that straddles a boundary is still found whole in one of them.
    """
    paragraphs = [re.sub(r"[ \t]+", " ", p).strip() for p in re.split(r"\n\s*\n", text or "")]
    pieces: list[str] = []
    for paragraph in filter(None, paragraphs):
        pieces.extend([paragraph] if len(paragraph) <= size else _split_long(paragraph, size))
    chunks: list[str] = []
    current: list[str] = []
    for piece in pieces:
        if current and len("\n\n".join([*current, piece])) > size:
            chunks.append("\n\n".join(current))
            carried = _tail_sentences(current[-1], overlap)
            current = [carried] if carried and len(carried) + len(piece) + 2 <= size else []
        current.append(piece)
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _split_long(paragraph: str, size: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > size:  # one sentence longer than a chunk: cut at a word boundary
            cut = sentence.rfind(" ", 0, size)
            cut = cut if cut > size // 2 else size
            head, sentence = sentence[:cut].strip(), sentence[cut:].strip()
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        if current and len(current) + 1 + len(sentence) > size:
            parts.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        parts.append(current)
    return parts


def _tail_sentences(text: str, limit: int) -> str:
    tail = ""
    for sentence in reversed(_SENTENCE_END.split(text)):
        candidate = f"{sentence} {tail}".strip()
        if len(candidate) > limit:
            break
        tail = candidate
    return tail if tail != text else ""


def knowledge_text_from_file(*, file_name: str, content: bytes) -> str:
    """The text of an uploaded .txt / .md / .pdf file. Raises KnowledgeUploadError with a readable reason."""
    suffix = Path(file_name).suffix.lower()
    if len(content) > UPLOAD_MAX_BYTES:
        raise KnowledgeUploadError(f"the file is larger than {UPLOAD_MAX_BYTES // (1024 * 1024)} MB")
    if suffix == ".pdf":
        try:
            return pdf_text(content=content, max_pages=UPLOAD_MAX_PAGES)
        except MediaRejected as exc:
            reason = "it has no extractable text" if exc.reason == "empty" else "it cannot be read"
            raise KnowledgeUploadError(f"the PDF cannot be used: {reason}") from exc
    if suffix in UPLOAD_TEXT_SUFFIXES:
        for encoding in ("utf-8-sig", "cp1252"):
            try:
                return content.decode(encoding).replace("\r\n", "\n")
            except UnicodeDecodeError:
                continue
        raise KnowledgeUploadError("the text file is neither UTF-8 nor Windows-1252")
    raise KnowledgeUploadError("only .txt, .md and .pdf files can be uploaded")


def knowledge_document_save(*, document: KnowledgeDocument) -> KnowledgeDocument:
    """Save `document` and rebuild its chunks from its content; then embed them when the provider can.

    Embedding is best effort: a provider error is logged and the chunks stay searchable by full text.
    """
    document.content = knowledge_text_clean(document.content)
    document.title = knowledge_text_clean(document.title)
    with transaction.atomic():
        document.save()
        document.chunks.all().delete()
        config = search_config_for(document.language)
        KnowledgeChunk.objects.bulk_create(
            KnowledgeChunk(document=document, index=i, text=text, search_config=config)
            for i, text in enumerate(knowledge_chunk_text(text=document.content))
        )
    knowledge_document_embed(document=document)
    return document


def knowledge_document_create(
    *, title: str, content: str, language: str = "es", tags: str = "", active: bool = True, source_file_name: str = ""
) -> KnowledgeDocument:
    document = KnowledgeDocument(
        title=title, content=content, language=language, tags=tags, active=active, source_file_name=source_file_name
    )
    return knowledge_document_save(document=document)


def knowledge_document_embed(*, document: KnowledgeDocument) -> int:
    """Store embeddings for the document's chunks; returns how many were embedded (0 without embeddings)."""
    config = provider_config_current()
    if config is None or not config.embedding_model:
        return 0
    chunks = list(document.chunks.order_by("index"))
    if not chunks:
        return 0
    try:
        vectors = provider_embed(config=config, texts=[c.text for c in chunks])
    except (AITransientError, AIPermanentError) as exc:
        logger.warning("knowledge embeddings skipped for document %s: %s", document.pk, exc)
        return 0
    for chunk, vector in zip(chunks, vectors, strict=False):
        chunk.embedding, chunk.embedding_model = vector, config.embedding_model
    KnowledgeChunk.objects.bulk_update(chunks, ["embedding", "embedding_model"])
    return len(vectors)
