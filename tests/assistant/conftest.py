from __future__ import annotations

import pytest

from apps.assistant.services import knowledge_document_create

# The pipeline's fixtures (demo templates and intents, the sandbox channel, the broker drain), for the
# end-to-end tests in test_pipeline.py.
from tests.interactions.conftest import demo_templates, drain, sandbox  # noqa: F401

HORARIOS = (
    "Los cultos de la Iglesia Vida Nueva son los domingos a las 10:00 y a las 18:00. "
    "La reunión de oración es los miércoles a las 19:30."
)
UBICACION = "Estamos en la Calle Mayor 12, Valencia, junto a la plaza del mercado. Hay aparcamiento gratuito."


@pytest.fixture
def church_knowledge(db):
    """Two small Spanish documents: service times and location."""
    return [
        knowledge_document_create(title="Horarios de culto", content=HORARIOS, language="es", tags="horarios"),
        knowledge_document_create(title="Ubicación", content=UBICACION, language="es", tags="ubicación"),
    ]


def pdf_bytes(*pages: str) -> bytes:
    """A small valid PDF with one line of Helvetica text per page (no PDF library needed to write it)."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(len(pages)).encode() + b" >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("cp1252")
        stream = b"BT /F1 12 Tf 72 720 Td (" + escaped + b") Tj ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents " + str(page_ids[i] + 1).encode() + b" 0 R >>"
        )
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def png_bytes() -> bytes:
    """A 1×1 red PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
