"""Keyword matching: text normalisation, an in-memory keyword index, typo tolerance, entity extraction.

Pure Python, no database: `KeywordIndex.build(rows)` takes plain keyword rows and `index.match(text)` answers
the best intent. The services layer builds the index from the active intents and keeps it cached in-process
(see `services.intent_match`).

Matching rules:
- Text and keywords are normalised the same way: NFC, accents stripped, casefolded; anything that is not a
  letter or digit (punctuation, emoji, bidi marks) separates words.
- A keyword matches whole words only: "donar" matches "quiero donar" but not "donaremos" (a different word).
  A phrase matches its words consecutively.
- Typos: a message word of at least five letters matches a keyword word of at least five letters when their
  Damerau-Levenshtein distance is 1 (2 when both have eight letters or more). Candidates come from a
  symmetric deletion neighbourhood (every keyword word with one letter deleted, and two for long words,
  looked up with the message word's own deletions), so the cost does not grow with the number of keywords;
  rapidfuzz then checks the exact distance. Each message word's candidates are cached.
- Confidence: 1.0 for an exact keyword or phrase, the mean per-word similarity × 0.95 for a fuzzy one, times
  the keyword's weight, clamped to [0, 1].
- Ranking: confidence, then intent priority, then the longer phrase, then the intent name, then the
  earliest position in the message. Deterministic.
- Entity: what the intent's `entity_pattern` captures when it has one; else the words after the keyword up
  to the end of the clause, without leading/trailing stop words; else the keyword as the message wrote it.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from rapidfuzz.distance import DamerauLevenshtein

FUZZY_MIN_LENGTH = 5
FUZZY_FACTOR = 0.95
_FUZZY_CACHE_SIZE = 50_000


def _combining_characters() -> str:
    # Marks (Mn, Mc, Me) of the Basic Multilingual Plane: they continue a word (Arabic harakat, Devanagari
    # vowel signs, decomposed accents) instead of splitting it. Scanning the BMP once takes ~20 ms.
    return "".join(chr(c) for c in range(0x300, 0x10000) if unicodedata.category(chr(c)).startswith("M"))


_MARKS = _combining_characters()
_MARKS_CLASS = re.escape(_MARKS)
# A word: letters/digits, with any combining marks inside or after them.
_WORD_RE = re.compile(rf"(?:[^\W_]|[{_MARKS_CLASS}])+")
_STRIP_MARKS = {ord(c): None for c in _MARKS}
# Where an entity stops: the end of a clause.
_CLAUSE_END_RE = re.compile(r"[.?!;:¿¡\n]")

# Dropped from the edges of an extracted entity ("de jóvenes" → "jóvenes"). Compared after normalisation.
STOP_WORDS = frozenset(
    """
    a al ante con de del desde el en entre es esta este esto hay la las le lo los me mi mis nos o para por que
    se sea ser si sobre son su sus te tu tus un una uno unos unas y ya cuando donde como cual cuales quien
    cuanto cuanta cuantos cuantas hola buenas buenos dias tardes noches favor porfa gracias quiero quisiera
    saber puedes podria informacion info proximo proxima the of for an about is are when where what which
    to in on at my me please hi hello next
    """.split()  # noqa: SIM905  (a word list reads better as text)
)


def normalize_word(word: str) -> str:
    """One word → its comparison form: accents stripped, casefolded."""
    if word.isascii():
        return word.lower()
    return unicodedata.normalize("NFKD", word).translate(_STRIP_MARKS).casefold()


class Token(NamedTuple):
    norm: str
    start: int
    end: int


def tokenize(text: str) -> tuple[str, list[Token]]:
    """The NFC form of `text` and its words (normalised) with their spans in that form."""
    if text.isascii():
        # Hot path: lower() keeps every position, so the words can be read from the lowered text directly.
        lowered = text.lower()
        return text, [Token(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(lowered)]
    text = unicodedata.normalize("NFC", text)
    tokens = []
    for m in _WORD_RE.finditer(text):
        norm = normalize_word(m.group())
        if norm:
            tokens.append(Token(norm, m.start(), m.end()))
    return text, tokens


def words_of(text: str) -> list[str]:
    """Just the normalised words of `text` (the same ones `tokenize` finds, without spans): the fast path."""
    if text.isascii():
        return _WORD_RE.findall(text.lower())
    found = (normalize_word(w) for w in _WORD_RE.findall(unicodedata.normalize("NFC", text)))
    return [w for w in found if w]


def normalize(text: str) -> str:
    """Text → space-separated normalised words ("¿Cuándo es?" → "cuando es")."""
    return " ".join(t.norm for t in tokenize(text)[1])


def _deletions(word: str) -> set[str]:
    """The word itself and every form of it with one letter deleted (two for words of eight letters or more)."""
    once = {word[:i] + word[i + 1 :] for i in range(len(word))}
    if len(word) < 8:
        return once | {word}
    twice = {w[:i] + w[i + 1 :] for w in once for i in range(len(w))}
    return once | twice | {word}


def _max_distance(word: str) -> int:
    return 2 if len(word) >= 8 else 1


@dataclass(frozen=True)
class KeywordRow:
    """One active keyword as the index needs it."""

    intent_id: int
    intent_name: str
    priority: int
    phrase: str
    language: str = ""
    weight: float = 1.0
    entity_pattern: str = ""


@dataclass(frozen=True)
class Match:
    intent_id: int
    intent_name: str
    confidence: float
    entity: str
    keyword: str


@dataclass(frozen=True)
class _Entry:
    words: tuple[str, ...]
    row: KeywordRow
    base_language: str


@dataclass
class KeywordIndex:
    """Keywords by their first word, plus the deletion neighbourhood of every fuzzy-eligible keyword word."""

    by_first_word: dict[str, list[_Entry]] = field(default_factory=dict)
    vocabulary: frozenset[str] = frozenset()
    neighbourhood: dict[str, set[str]] = field(default_factory=dict)
    patterns: dict[int, re.Pattern[str]] = field(default_factory=dict)
    # Length of the longest fuzzy-eligible keyword word: a message word longer by more than the largest
    # edit distance cannot match any keyword, and its deletion neighbourhood would cost O(n²) strings of length
    # n (a 4,096-letter word needs tens of GB), so it is never built.
    longest_word: int = 0
    _fuzzy_cache: OrderedDict[str, tuple[tuple[str, float], ...]] = field(default_factory=OrderedDict)

    @classmethod
    def build(cls, rows: Iterable[KeywordRow]) -> KeywordIndex:
        by_first: dict[str, list[_Entry]] = {}
        vocabulary: set[str] = set()
        patterns: dict[int, re.Pattern[str]] = {}
        for row in rows:
            words = tuple(t.norm for t in tokenize(row.phrase)[1])
            if not words:
                continue
            base_language = row.language.replace("-", "_").split("_")[0].lower()
            by_first.setdefault(words[0], []).append(_Entry(words, row, base_language))
            vocabulary.update(words)
            if row.entity_pattern and row.intent_id not in patterns:
                # Refused at save time; an old bad row must not break matching.
                with contextlib.suppress(re.error):
                    patterns[row.intent_id] = re.compile(row.entity_pattern, re.IGNORECASE)
        neighbourhood: dict[str, set[str]] = {}
        for word in vocabulary:
            if len(word) >= FUZZY_MIN_LENGTH:
                for key in _deletions(word):
                    neighbourhood.setdefault(key, set()).add(word)
        return cls(
            by_first_word=by_first,
            vocabulary=frozenset(vocabulary),
            neighbourhood=neighbourhood,
            patterns=patterns,
            longest_word=max((len(w) for w in vocabulary if len(w) >= FUZZY_MIN_LENGTH), default=0),
        )

    def _variants(self, word: str) -> tuple[tuple[str, float], ...]:
        """Keyword words this message word may stand for, with their similarity (1.0 = same word)."""
        exact = ((word, 1.0),) if word in self.vocabulary else ()
        if len(word) < FUZZY_MIN_LENGTH or len(word) > self.longest_word + 2:
            return exact
        cached = self._fuzzy_cache.get(word)
        if cached is not None:
            return cached
        candidates: set[str] = set()
        neighbourhood = self.neighbourhood
        for key in _deletions(word):
            near = neighbourhood.get(key)
            if near:
                candidates.update(near)
        found = list(exact)
        for candidate in sorted(candidates):
            if candidate == word:
                continue
            limit = min(_max_distance(word), _max_distance(candidate))
            distance = DamerauLevenshtein.distance(word, candidate, score_cutoff=limit)
            if distance <= limit:
                found.append((candidate, 1.0 - distance / max(len(word), len(candidate))))
        result = tuple(found)
        # Bounded: message words are unbounded user input.
        if len(self._fuzzy_cache) >= _FUZZY_CACHE_SIZE:
            self._fuzzy_cache.popitem(last=False)
        self._fuzzy_cache[word] = result
        return result

    def match(self, text: str, *, language: str = "") -> Match | None:
        """The best intent for `text`, or None. Keywords of `language` (or its base) are preferred; when
        none of them matches, keywords of any language are tried."""
        words = words_of(text)
        if not words:
            return None
        variants = [self._variants(w) for w in words]
        by_first_word = self.by_first_word
        base = language.split("_")[0].split("-")[0].lower()
        for pass_language in [base, None] if base else [None]:
            best: tuple | None = None
            for i, token_variants in enumerate(variants):
                for first, first_similarity in token_variants:
                    for entry in by_first_word.get(first, ()):
                        row = entry.row
                        if pass_language is not None and entry.base_language != pass_language:
                            continue
                        if len(entry.words) == 1:
                            similarity = first_similarity
                        else:
                            phrase = self._phrase_similarity(entry.words, variants, i, first_similarity)
                            if phrase is None:
                                continue
                            similarity = phrase
                        confidence = 1.0 if similarity == 1.0 else similarity * FUZZY_FACTOR
                        confidence = max(0.0, min(1.0, confidence * row.weight))
                        key = (-confidence, -row.priority, -len(entry.words), row.intent_name, i, row.phrase)
                        if best is None or key < best[0]:
                            best = (key, i, entry, confidence)
            if best is not None:
                _key, i, entry, confidence = best
                row, after = entry.row, i + len(entry.words)
                # Spans are only needed for the entity of the winner.
                nfc, tokens = tokenize(text)
                return Match(
                    intent_id=row.intent_id,
                    intent_name=row.intent_name,
                    confidence=round(confidence, 4),
                    entity=self._entity(row.intent_id, nfc, tokens, i, after, tokens[after - 1].end),
                    keyword=row.phrase,
                )
        return None

    @staticmethod
    def _phrase_similarity(
        words: tuple[str, ...], variants: list[tuple[tuple[str, float], ...]], start: int, first: float
    ) -> float | None:
        if start + len(words) > len(variants):
            return None
        total = first
        for offset, word in enumerate(words[1:], start=1):
            similarity = next((s for w, s in variants[start + offset] if w == word), None)
            if similarity is None:
                return None
            total += similarity
        return total / len(words)

    def _entity(self, intent_id: int, text: str, tokens: list[Token], first: int, after: int, keyword_end: int) -> str:
        pattern = self.patterns.get(intent_id)
        if pattern is not None:
            m = pattern.search(text)
            if m:
                if "entity" in pattern.groupindex:
                    value = m.group("entity")
                elif pattern.groups:
                    value = m.group(1)
                else:
                    value = m.group(0)
                return " ".join((value or "").split())
            return ""
        # Nothing after the keyword ("¿cuándo es el retiro?"): the keyword itself names the thing asked about.
        return entity_after(text, tokens, after, keyword_end) or text[tokens[first].start : keyword_end]


def entity_after(text: str, tokens: list[Token], after: int, keyword_end: int) -> str:
    """The words following the keyword up to the end of the clause, without leading/trailing stop words,
    in the message's own spelling ("conferencia de jóvenes?" after "conferencia" → "jóvenes")."""
    words: list[Token] = []
    previous_end = keyword_end
    for token in tokens[after:]:
        if _CLAUSE_END_RE.search(text, previous_end, token.start):
            break
        words.append(token)
        previous_end = token.end
        if len(words) >= 8:
            break
    while words and words[0].norm in STOP_WORDS:
        words.pop(0)
    while words and words[-1].norm in STOP_WORDS:
        words.pop()
    if not words:
        return ""
    return " ".join(text[words[0].start : words[-1].end].split())
