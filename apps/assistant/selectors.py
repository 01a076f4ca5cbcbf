"""Reads: the knowledge search (full text + embeddings) and the lists admin and commands show."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from apps.assistant.models import AIConfiguration, KnowledgeChunk

SEARCH_CONFIGS = ("spanish", "english", "simple")
# SQLite's stand-in for PostgreSQL's stop-word lists: words too common to say anything about relevance.
STOP_WORDS = frozenset(
    str.split(
        """
    a al algo algun alguna ante antes como con contra cual cuales cuando de del desde donde dos el ella ellas
    ellos en entre era es esa ese eso esta estan este esto estos fue ha hay la las le les lo los mas me mi mis
    muy nada ni no nos o os otra otro para pero poco por porque que quien se ser si sin sobre son su sus
    tambien te tengo ti tu tus un una uno unos y ya yo hola quiero saber puedo puede
    about an and are as at be but by can do does for from had has have how i if in into is it its me my of
    on or our so than that the their them then there these they this to was we what when where which who
    why will with you your hello hi please
    """
    )
)


@dataclass(frozen=True)
class ScoredChunk:
    chunk_id: int
    document_id: int
    document_title: str
    language: str
    index: int
    text: str
    score: float


def ai_configuration_list() -> QuerySet[AIConfiguration]:
    return AIConfiguration.objects.order_by("-active", "name")


def _active_chunks() -> QuerySet[KnowledgeChunk]:
    return KnowledgeChunk.objects.filter(document__active=True).select_related("document")


def knowledge_search(
    *,
    query: str,
    limit: int | None = None,
    query_embedding: list[float] | None = None,
    embedding_model: str = "",
    min_score: float | None = None,
) -> list[ScoredChunk]:
    """Active chunks ranked for `query`, best first, scores in [0, 1], at most `limit`, none below `min_score`.

    Full text on PostgreSQL (ts_rank_cd over the language's configuration, any query term may match),
    token overlap on SQLite. With `query_embedding`, chunks with a stored embedding are ranked by the mean of
    the text score and the cosine similarity (hybrid), so a paraphrase without shared words still ranks.
    Only embeddings made by `embedding_model` (when given) are compared: vectors of two models do not mix.
    """
    limit = limit or settings.AI_RETRIEVAL_TOP_K
    min_score = settings.AI_MIN_RETRIEVAL_SCORE if min_score is None else min_score
    query = (query or "").strip()
    if not query:
        return []
    if connection.vendor == "postgresql":
        text_scores = _fulltext_scores_postgres(query=query, limit=max(limit * 5, 20))
    else:
        text_scores = _fulltext_scores_python(query=query)
    scores = dict(text_scores)
    if query_embedding:
        cosine = _embedding_scores(query_embedding, embedding_model)
        if cosine:
            scores = {
                chunk_id: (scores.get(chunk_id, 0.0) + max(cosine.get(chunk_id, 0.0), 0.0)) / 2
                for chunk_id in set(scores) | set(cosine)
            }
    ranked = sorted(((s, cid) for cid, s in scores.items() if s > 0 and s >= min_score), key=lambda p: (-p[0], p[1]))
    ranked = ranked[:limit]
    chunks = _active_chunks().in_bulk([cid for _, cid in ranked])
    return [
        ScoredChunk(
            chunk_id=cid,
            document_id=chunks[cid].document_id,
            document_title=chunks[cid].document.title,
            language=chunks[cid].document.language,
            index=chunks[cid].index,
            text=chunks[cid].text,
            score=round(score, 4),
        )
        for score, cid in ranked
        if cid in chunks
    ]


def _fulltext_scores_postgres(*, query: str, limit: int) -> dict[int, float]:
    # plainto_tsquery ANDs its terms, too strict for a natural question ("¿a qué hora es el culto?"):
    # its lexemes are re-joined with | so any term matches and ts_rank_cd (cover density) ranks passages
    # matching more terms closer together higher. Normalisation 32 maps the rank into [0, 1).
    # Each branch filters on search_config so the partial GIN index for that configuration applies.
    branches, params = [], []
    for config in SEARCH_CONFIGS:
        branches.append(
            f"""
            SELECT c.id, ts_rank_cd(to_tsvector('{config}'::regconfig, c.text), q.query, 32) AS score
            FROM assistant_knowledgechunk c
            JOIN assistant_knowledgedocument d ON d.id = c.document_id,
                 (SELECT nullif(replace(plainto_tsquery('{config}'::regconfig, %s)::text, '&', '|'), '')::tsquery
                  AS query) q
            WHERE d.active AND c.search_config = '{config}'
              AND q.query IS NOT NULL AND to_tsvector('{config}'::regconfig, c.text) @@ q.query
            """
        )
        params.append(query)
    sql = " UNION ALL ".join(branches) + " ORDER BY score DESC LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return {row[0]: float(row[1]) for row in cursor.fetchall()}


def search_tokens(text: str) -> list[str]:
    """Lower-case, accent-free words of three letters or more, without stop words."""
    plain = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return [w for w in re.findall(r"[a-z0-9]+", plain) if len(w) >= 3 and w not in STOP_WORDS]


def _terms_match(query_term: str, doc_term: str) -> bool:
    # A crude stemmer: "donar" ~ "donaciones" (shared 4-letter prefix for words of 5+), "hora" ~ "horario".
    if query_term == doc_term:
        return True
    shorter, longer = sorted((query_term, doc_term), key=len)
    if len(shorter) >= 4 and longer.startswith(shorter):
        return True
    return len(shorter) >= 5 and shorter[:5] == longer[:5]


def _fulltext_scores_python(*, query: str) -> dict[int, float]:
    """SQLite: the share of distinct query terms found in the chunk (or its document title)."""
    terms = sorted(set(search_tokens(query)))
    if not terms:
        return {}
    scores: dict[int, float] = {}
    for chunk in _active_chunks().only("id", "text", "document__title"):
        words = set(search_tokens(f"{chunk.document.title} {chunk.text}"))
        matched = sum(1 for term in terms if any(_terms_match(term, word) for word in words))
        if matched:
            scores[chunk.id] = matched / len(terms)
    return scores


def _embedding_scores(query_embedding: list[float], embedding_model: str) -> dict[int, float]:
    scores = {}
    chunks = _active_chunks().filter(embedding__isnull=False)
    if embedding_model:
        chunks = chunks.filter(embedding_model=embedding_model)
    for chunk_id, embedding in chunks.values_list("id", "embedding"):
        if isinstance(embedding, list) and len(embedding) == len(query_embedding):
            scores[chunk_id] = cosine_similarity(query_embedding, embedding)
    return scores


def cosine_similarity(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
