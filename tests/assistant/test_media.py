from __future__ import annotations

import base64

import pytest

from apps.assistant.services import AIAnswer, AIPermanentError, ai_answer_generate, ai_transcribe
from tests.assistant.conftest import HORARIOS, pdf_bytes, png_bytes

pytestmark = pytest.mark.django_db


def test_an_image_goes_to_the_model_as_a_data_url_with_its_caption(openai_emulator, church_knowledge, tmp_path):
    image = tmp_path / "foto.png"
    image.write_bytes(png_bytes())
    openai_emulator.reply_with("Es un cuadrado rojo.")

    answer = ai_answer_generate(
        contact_key="+34600000101", text="¿Qué es esto?", media_path=str(image), media_mime_type="image/png"
    )

    assert answer.text == "Es un cuadrado rojo."
    assert answer.source == "model"
    [request] = openai_emulator.chat_requests()
    user = request["messages"][-1]
    assert user == {
        "role": "user",
        "content": [
            {"type": "text", "text": "¿Qué es esto?"},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/png;base64," + base64.b64encode(png_bytes()).decode()},
            },
        ],
    }
    assert "The user sent an image" in request["messages"][0]["content"]


def test_an_image_without_a_caption_gets_a_default_question(openai_emulator, church_knowledge, tmp_path):
    image = tmp_path / "foto.png"
    image.write_bytes(png_bytes())

    ai_answer_generate(contact_key="+34600000102", text="", media_path=str(image), media_mime_type="image/png")

    content = openai_emulator.chat_requests()[0]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "¿Qué muestra esta imagen?"}


def test_an_image_too_large_gets_a_polite_reply_without_a_model_call(
    openai_emulator, church_knowledge, tmp_path, settings
):
    settings.AI_MEDIA_MAX_BYTES = 10
    image = tmp_path / "foto.png"
    image.write_bytes(png_bytes())

    answer = ai_answer_generate(
        contact_key="+34600000103", text="mira", media_path=str(image), media_mime_type="image/png"
    )

    assert answer == AIAnswer(
        text="El archivo es demasiado grande para que pueda revisarlo; ¿puedes enviar uno más pequeño?", source="none"
    )
    assert openai_emulator.requests == []


def test_a_pdf_is_read_and_its_text_answers_the_caption(openai_emulator, church_knowledge, tmp_path):
    document = tmp_path / "boletin.pdf"
    document.write_bytes(pdf_bytes("Boletin de diciembre: cena navidena el 20 de diciembre.", "Pagina dos."))
    openai_emulator.reply_with("La cena navideña es el 20 de diciembre.")

    answer = ai_answer_generate(
        contact_key="+34600000104",
        text="¿Cuándo es la cena?",
        media_path=str(document),
        media_mime_type="application/pdf",
    )

    assert answer.text == "La cena navideña es el 20 de diciembre."
    assert answer.source == "model"
    user = openai_emulator.chat_requests()[0]["messages"][-1]
    assert user == {
        "role": "user",
        "content": (
            "¿Cuándo es la cena?\n\n--- PDF ---\nBoletin de diciembre: cena navidena el 20 de diciembre.\n\nPagina dos."
        ),
    }


def test_a_pdf_without_a_caption_is_summarised_within_the_page_limit(
    openai_emulator, church_knowledge, tmp_path, settings
):
    settings.AI_PDF_MAX_PAGES = 1
    document = tmp_path / "acta.pdf"
    document.write_bytes(pdf_bytes("Primera pagina del acta.", "Segunda pagina secreta."))

    ai_answer_generate(contact_key="+34600000105", text="", media_path=str(document), media_mime_type="application/pdf")

    content = openai_emulator.chat_requests()[0]["messages"][-1]["content"]
    assert content == "Resume este documento en pocas frases.\n\n--- PDF ---\nPrimera pagina del acta."


def test_an_unreadable_pdf_gets_a_polite_reply(openai_emulator, church_knowledge, tmp_path):
    document = tmp_path / "roto.pdf"
    document.write_bytes(b"%PDF-1.4 this is not really a pdf")

    answer = ai_answer_generate(
        contact_key="+34600000106", text="léelo", media_path=str(document), media_mime_type="application/pdf"
    )

    assert answer.source == "none"
    assert answer.text.startswith("No pude leer el archivo")
    assert openai_emulator.requests == []


def test_an_unsupported_attachment_gets_a_polite_reply(openai_emulator, church_knowledge, tmp_path):
    archive = tmp_path / "fotos.zip"
    archive.write_bytes(b"PK\x03\x04")

    answer = ai_answer_generate(
        contact_key="+34600000107", text="", media_path=str(archive), media_mime_type="application/zip"
    )

    assert answer == AIAnswer(
        text="Gracias por tu mensaje. Por ahora solo puedo leer texto, imágenes, notas de voz y PDF.", source="none"
    )
    assert openai_emulator.requests == []


def test_without_ai_an_image_with_a_matching_caption_gets_the_excerpt(church_knowledge, tmp_path, settings):
    settings.OPENAI_API_KEY = ""
    image = tmp_path / "foto.png"
    image.write_bytes(png_bytes())

    answer = ai_answer_generate(
        contact_key="+34600000108", text="¿horario del culto?", media_path=str(image), media_mime_type="image/png"
    )

    assert answer.source == "retrieval"
    assert HORARIOS in answer.text


def test_a_voice_note_is_sent_for_transcription_as_multipart(openai_emulator, tmp_path):
    audio = tmp_path / "nota"
    audio.write_bytes(b"OggS\x00fake-opus-audio")
    openai_emulator.transcribe_with("¿A qué hora es el culto?")

    transcript = ai_transcribe(media_path=str(audio), mime_type="audio/ogg; codecs=opus")

    assert transcript == "¿A qué hora es el culto?"
    [request] = openai_emulator.transcription_requests()
    assert request.path == "/v1/audio/transcriptions"
    assert request.fields["model"] == "whisper-1"
    assert request.fields["file"] == {"filename": "nota.ogg", "content": b"OggS\x00fake-opus-audio"}


def test_a_voice_note_attached_to_an_answer_is_transcribed_then_answered(openai_emulator, church_knowledge, tmp_path):
    audio = tmp_path / "nota.ogg"
    audio.write_bytes(b"OggS\x00fake")
    openai_emulator.transcribe_with("¿A qué hora es el culto?")
    openai_emulator.reply_with("A las 10:00.")

    answer = ai_answer_generate(contact_key="+34600000109", text="", media_path=str(audio), media_mime_type="audio/ogg")

    assert answer.text == "A las 10:00."
    request = openai_emulator.chat_requests()[0]
    assert request["messages"][-1] == {"role": "user", "content": "¿A qué hora es el culto?"}
    assert HORARIOS in request["messages"][0]["content"]


def test_transcription_without_ai_is_a_permanent_error(settings, tmp_path, db):
    settings.OPENAI_API_KEY = ""
    audio = tmp_path / "nota.ogg"
    audio.write_bytes(b"OggS")

    with pytest.raises(AIPermanentError, match="no AI provider"):
        ai_transcribe(media_path=str(audio), mime_type="audio/ogg")


def test_a_missing_audio_file_is_a_permanent_error(openai_emulator, tmp_path):
    with pytest.raises(AIPermanentError, match="unreadable"):
        ai_transcribe(media_path=str(tmp_path / "missing.ogg"), mime_type="audio/ogg")


def test_a_text_attachment_is_read_like_a_document(openai_emulator, church_knowledge, tmp_path):
    notes = tmp_path / "notas.txt"
    notes.write_text("Lista de compras: pan y vino.", encoding="utf-8")

    ai_answer_generate(
        contact_key="+34600000110", text="¿Qué dice?", media_path=str(notes), media_mime_type="text/plain"
    )

    content = openai_emulator.chat_requests()[0]["messages"][-1]["content"]
    assert content == "¿Qué dice?\n\n--- Document ---\nLista de compras: pan y vino."


def test_an_english_contact_gets_english_rules_and_replies(openai_emulator, church_knowledge, tmp_path):
    archive = tmp_path / "x.zip"
    archive.write_bytes(b"PK")

    ai_answer_generate(contact_key="+447700900001", text="What time is the culto?", language="en_GB")
    unsupported = ai_answer_generate(
        contact_key="+447700900001", text="", media_path=str(archive), media_mime_type="application/zip", language="en"
    )

    system = openai_emulator.chat_requests()[0]["messages"][0]["content"]
    assert "Answer in English" in system
    assert "Sorry, I don't have information about that." in system
    assert unsupported.text == "Thanks for your message. For now I can only read text, images, voice notes and PDFs."
