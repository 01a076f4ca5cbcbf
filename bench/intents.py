"""P4 intent matching: messages per second on one core with 1,000 templates × 10 keywords, against a naive loop.

Both run in this process, pinned to one CPU, over the same generated messages:
- Relay: `apps.message_templates.services.intent_match(text=…)` (the call the pipeline makes), index built from
  the database rows like in production;
- naive: for every message, every keyword phrase is looked for as whole words in the normalised text
  (exact only — a naive loop with typo tolerance is another order of magnitude slower; it is measured on a
  sample and reported separately).
Messages: 40 % contain a keyword, 20 % a keyword with a one-letter typo, 40 % match nothing; 4–14 words each.
Two passes over the messages: "cold" (first time each word is seen: fuzzy neighbourhood lookups) and "warm".
Target: ≥ 20,000 messages/s.
"""

from __future__ import annotations

import os
import random
import time

from bench import harness

TEMPLATES = 1000
KEYWORDS_PER_TEMPLATE = 10
MESSAGES = 20_000
SYLLABLES = [c + v for c in "bcdfglmnprstvz" for v in "aeiou"] + ["que", "tra", "pre", "cla", "gri"]
FILLER = [
    "hola",
    "quiero",
    "saber",
    "por",
    "favor",
    "cuando",
    "donde",
    "como",
    "es",
    "el",
    "la",
    "los",
    "de",
    "del",
    "para",
    "mi",
    "una",
    "un",
    "que",
    "tengo",
    "una",
    "pregunta",
    "gracias",
    "buenas",
    "tardes",
    "necesito",
    "ayuda",
    "con",
    "esto",
    "sobre",
    "informacion",
    "hoy",
    "mañana",
    "semana",
    "ahora",
]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables))


def _vocabulary(rng: random.Random) -> list[list[str]]:
    """TEMPLATES × KEYWORDS_PER_TEMPLATE distinct phrases of 1–3 words (2–4 syllables per word)."""
    seen: set[str] = set()
    phrases: list[list[str]] = []
    while len(phrases) < TEMPLATES * KEYWORDS_PER_TEMPLATE:
        words = [_word(rng, rng.randint(2, 4)) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        key = " ".join(words)
        if key not in seen and not any(w in FILLER for w in words):
            seen.add(key)
            phrases.append(words)
    return phrases


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :] if rng.random() < 0.5 else word[:i] + rng.choice("aeioulmnrst") + word[i + 1 :]


def _messages(rng: random.Random, phrases: list[list[str]]) -> list[str]:
    messages = []
    for i in range(MESSAGES):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
        kind = i % 5
        if kind in (0, 1):
            words[rng.randrange(len(words))] = " ".join(rng.choice(phrases))
        elif kind == 2:
            phrase = rng.choice(phrases)
            words[rng.randrange(len(words))] = " ".join(_typo(rng, w) for w in phrase)
        else:
            words.append(_word(rng, 3))  # an unknown word of keyword shape
        text = " ".join(words)
        messages.append(text[0].upper() + text[1:] + rng.choice(("?", "!", ".", "", " 🙏")))
    return messages


def _setup_django() -> None:
    env = harness.environment()
    harness.database_prepare(env)
    os.environ.update(env)
    import django

    django.setup()


def _seed(phrases: list[list[str]]) -> None:
    from apps.message_templates.models import Intent, Keyword, WhatsAppTemplate
    from apps.message_templates.services import intent_index_invalidate

    Keyword.objects.filter(intent__name__startswith="bench-").delete()
    Intent.objects.filter(name__startswith="bench-").delete()
    WhatsAppTemplate.objects.filter(name__startswith="bench_").delete()
    templates = WhatsAppTemplate.objects.bulk_create(
        WhatsAppTemplate(name=f"bench_template_{i}", language="es", body_text="Hola {{1}}", parameters=["1"])
        for i in range(TEMPLATES)
    )
    intents = Intent.objects.bulk_create(
        Intent(name=f"bench-intent-{i}", template=template, priority=i % 3) for i, template in enumerate(templates)
    )
    Keyword.objects.bulk_create(
        Keyword(intent=intents[i // KEYWORDS_PER_TEMPLATE], language="es", phrase=" ".join(words))
        for i, words in enumerate(phrases)
    )
    intent_index_invalidate()


def _naive_matcher(phrases: list[list[str]]):
    from apps.message_templates.matching import normalize

    keywords = [(f" {' '.join(words)} ", i // KEYWORDS_PER_TEMPLATE) for i, words in enumerate(phrases)]

    def match(text: str):
        padded = f" {normalize(text)} "
        best = None
        for phrase, intent in keywords:
            if phrase in padded and (best is None or len(phrase) > len(best[0])):
                best = (phrase, intent)
        return best

    return match


def _naive_fuzzy_matcher(phrases: list[list[str]]):
    from rapidfuzz.distance import DamerauLevenshtein

    from apps.message_templates.matching import normalize

    keywords = [(words, i // KEYWORDS_PER_TEMPLATE) for i, words in enumerate(phrases)]

    def close(a: str, b: str) -> bool:
        if a == b:
            return True
        if len(a) < 5 or len(b) < 5:
            return False
        return DamerauLevenshtein.distance(a, b, score_cutoff=1) <= 1

    def match(text: str):
        words = normalize(text).split()
        for phrase, intent in keywords:
            for start in range(len(words) - len(phrase) + 1):
                if all(close(words[start + k], w) for k, w in enumerate(phrase)):
                    return intent
        return None

    return match


def _rate(function, messages: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    hits = sum(1 for text in messages if function(text) is not None)
    return len(messages) / (time.perf_counter() - started), hits


def run(*, quick: bool = False) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    _setup_django()
    from apps.message_templates import services
    from apps.message_templates.matching import KeywordIndex

    rng = random.Random(7)
    phrases = _vocabulary(rng)
    messages = _messages(rng, phrases)
    if quick:
        messages = messages[:5000]
    _seed(phrases)

    started = time.perf_counter()
    services._holder.reset()
    services._holder.get()
    build_seconds = time.perf_counter() - started

    def relay(text: str):
        return services.intent_match(text=text, language="es")

    cold, relay_hits = _rate(relay, messages)
    warm, _ = _rate(relay, messages)
    # The matcher alone (no Intent instance per match): what the index costs without the service wrapper.
    index: KeywordIndex = services._holder.get()[0]
    index_only, _ = _rate(lambda text: index.match(text, language="es"), messages)
    naive, naive_hits = _rate(_naive_matcher(phrases), messages)
    sample = messages[: 100 if quick else 200]
    naive_fuzzy, _ = _rate(_naive_fuzzy_matcher(phrases), sample)
    payload = {
        "benchmark": "P4 intent matching",
        "templates": TEMPLATES,
        "keywords": TEMPLATES * KEYWORDS_PER_TEMPLATE,
        "messages": len(messages),
        "cpu": "one core (sched_setaffinity)",
        "index_build_s": round(build_seconds, 3),
        "relay_cold_per_s": round(cold),
        "relay_warm_per_s": round(warm),
        "relay_index_only_warm_per_s": round(index_only),
        "relay_matched": relay_hits,
        "naive_exact_loop_per_s": round(naive),
        "naive_exact_matched": naive_hits,
        "naive_fuzzy_loop_per_s": round(naive_fuzzy, 1),
        "naive_fuzzy_sample": len(sample),
        "speedup_vs_naive_exact": round(warm / naive, 1),
        "speedup_vs_naive_fuzzy": round(warm / naive_fuzzy, 1),
        "meets_target": cold >= 20_000 and warm >= 20_000,
        "target": ">= 20,000 messages/s on one core",
    }
    for key in ("relay_cold_per_s", "relay_warm_per_s", "naive_exact_loop_per_s", "naive_fuzzy_loop_per_s"):
        print(f"P4 {key}: {payload[key]}")
    return payload
