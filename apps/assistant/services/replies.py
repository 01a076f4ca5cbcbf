"""The assistant's own short replies (not from a model), in Spanish or English, and WhatsApp length limits."""

from __future__ import annotations

import re

from django.conf import settings

# WhatsApp rejects text bodies over 4096 characters.
MAX_REPLY_CHARS = 4096

REPLIES = {
    "es": {
        "no_knowledge": "Lo siento, no tengo información sobre eso. Alguien de nuestro equipo te responderá pronto.",
        "excerpt_label": "Respuesta automática con un extracto de nuestra información:",
        "unsupported": "Gracias por tu mensaje. Por ahora solo puedo leer texto, imágenes, notas de voz y PDF.",
        "too_large": "El archivo es demasiado grande para que pueda revisarlo; ¿puedes enviar uno más pequeño?",
        "unreadable": "No pude leer el archivo que enviaste; ¿puedes enviarlo de nuevo o escribir tu pregunta?",
        "image_no_ai": "Gracias por la imagen. Por ahora no puedo revisar imágenes; escríbenos tu pregunta, por favor.",
        "document_no_ai": "Gracias por el documento. Por ahora no puedo leer documentos; escríbenos tu pregunta.",
        "audio_no_ai": "Gracias por tu nota de voz. Por ahora no puedo escucharla; escríbenos tu pregunta, por favor.",
        "image_default_question": "¿Qué muestra esta imagen?",
        "document_default_question": "Resume este documento en pocas frases.",
    },
    "en": {
        "no_knowledge": "Sorry, I don't have information about that. A member of our team will get back to you soon.",
        "excerpt_label": "Automatic reply with an excerpt from our information:",
        "unsupported": "Thanks for your message. For now I can only read text, images, voice notes and PDFs.",
        "too_large": "Thanks. The file is too large for me to review; could you send a smaller one?",
        "unreadable": "Thanks. I couldn't read the file you sent; could you send it again or type your question?",
        "image_no_ai": "Thanks for the image. I can't review images right now; please type your question.",
        "document_no_ai": "Thanks for the document. I can't read documents right now; please type your question.",
        "audio_no_ai": "Thanks for your voice note. I can't listen to it right now; please type your question.",
        "image_default_question": "What does this image show?",
        "document_default_question": "Summarise this document in a few sentences.",
    },
}
LANGUAGE_NAMES = {"es": "Spanish", "en": "English"}

_SPANISH_HINTS = frozenset(
    str.split(
        "el la los las que de del y es por para como cómo qué cuál cuándo dónde hola gracias quiero horario iglesia "
        "puedo tienen hay mi una un con buenos buenas días tardes"
    )
)
_ENGLISH_HINTS = frozenset(
    str.split(
        "the is are what how when where hello hi thanks thank please you your can do does my a an with good "
        "morning church time"
    )
)


def reply_language(*, language: str = "", text: str = "") -> str:
    """'es' or 'en': the contact's language when known, else a guess from the text, else AI_DEFAULT_LANGUAGE."""
    code = (language or "").replace("_", "-").split("-")[0].lower()
    if code in REPLIES:
        return code
    words = re.findall(r"[\wáéíóúñü]+", (text or "").lower())
    spanish = sum(w in _SPANISH_HINTS for w in words) + sum(ch in "¿¡ñáéíóú" for ch in (text or "").lower())
    english = sum(w in _ENGLISH_HINTS for w in words)
    if spanish or english:
        return "es" if spanish >= english else "en"
    default = (settings.AI_DEFAULT_LANGUAGE or "es")[:2].lower()
    return default if default in REPLIES else "es"


def reply_text(key: str, language: str) -> str:
    return REPLIES.get(language, REPLIES["es"])[key]


def reply_fit(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    """`text` cut to WhatsApp's limit at a word boundary, with an ellipsis when cut."""
    text = re.sub("[\x00\ud800-\udfff]", "", text or "").strip()
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    cut = cut if cut > limit // 2 else limit - 1
    return text[:cut].rstrip() + "…"
