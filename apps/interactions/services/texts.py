"""The few texts the pipeline itself sends (opt-out confirmations, the rate-limit notice, the AI apology)."""

from __future__ import annotations

from django.conf import settings

TEXTS: dict[str, dict[str, str]] = {
    "opted_out": {
        "en": "You have unsubscribed and will not receive more messages from us. Reply START to subscribe again.",
        "es": "Has cancelado tu suscripción y no recibirás más mensajes. Responde INICIAR (o START) para volver.",
        "fr": "Vous êtes désabonné et ne recevrez plus de messages. Répondez START pour vous réabonner.",
    },
    "opted_in": {
        "en": "You are subscribed again. Reply STOP at any time to unsubscribe.",
        "es": "Te has vuelto a suscribir. Responde PARAR (o STOP) en cualquier momento para darte de baja.",
        "fr": "Vous êtes à nouveau abonné. Répondez ARRET (ou STOP) à tout moment pour vous désabonner.",
    },
    "rate_limited": {
        "en": "You are sending messages very quickly. Please wait a minute before writing again.",
        "es": "Estás enviando mensajes muy rápido. Espera un minuto antes de volver a escribir.",
        "fr": "Vous envoyez des messages très rapidement. Merci d'attendre une minute avant de réécrire.",
    },
    "ai_unavailable": {
        "en": "Sorry, we cannot answer that right now. We have received your message and will get back to you.",
        "es": "Lo sentimos, ahora no podemos responder a eso. Hemos recibido tu mensaje y te contactaremos.",
        "fr": "Désolé, nous ne pouvons pas répondre pour le moment. Nous avons bien reçu votre message.",
    },
}


def text_for(key: str, language: str = "") -> str:
    """The text `key` in `language` (its first two letters), else in settings.DEFAULT_LANGUAGE, else English."""
    variants = TEXTS[key]
    for candidate in (language[:2].lower(), getattr(settings, "DEFAULT_LANGUAGE", "es")[:2], "en"):
        if candidate in variants:
            return variants[candidate]
    return variants["en"]
