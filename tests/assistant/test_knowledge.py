from __future__ import annotations

import itertools

import pytest
from django.db import connection

from apps.assistant.models import KnowledgeChunk, KnowledgeDocument
from apps.assistant.selectors import knowledge_search
from apps.assistant.services import (
    ai_answer_generate,
    knowledge_chunk_text,
    knowledge_document_create,
    knowledge_document_save,
    knowledge_text_from_file,
)
from apps.assistant.services.knowledge import KnowledgeUploadError
from tests.assistant.conftest import pdf_bytes
from tests.emulators.openai import hashed_embedding

pytestmark = pytest.mark.django_db


def test_chunks_follow_paragraphs_stay_under_the_size_and_overlap():
    paragraphs = [f"Párrafo {n}. " + "Una frase de relleno con palabras. " * 6 + f"Cierre {n}." for n in range(8)]

    chunks = knowledge_chunk_text(text="\n\n".join(paragraphs), size=800, overlap=160)

    assert len(chunks) > 1
    assert all(len(c) <= 800 for c in chunks)
    assert chunks[0].startswith("Párrafo 0.")
    for previous, current in itertools.pairwise(chunks):
        carried = current.split("\n\n")[0]  # the overlap: the last sentences of the previous chunk
        assert previous.endswith(carried)
        assert 0 < len(carried) <= 160
    joined = " ".join(chunks)
    assert all(f"Cierre {n}." in joined for n in range(8))


def test_a_paragraph_longer_than_a_chunk_is_split_at_sentences():
    long = " ".join(f"Frase número {n} del texto largo." for n in range(60))

    chunks = knowledge_chunk_text(text=long, size=300, overlap=60)

    assert all(len(c) <= 300 for c in chunks)
    assert all(c.endswith(".") for c in chunks)
    assert "Frase número 59 del texto largo." in chunks[-1]


def test_saving_a_document_rebuilds_its_chunks(church_knowledge):
    document = church_knowledge[0]
    old_ids = set(document.chunks.values_list("id", flat=True))

    document.content = "Nuevo horario: el culto es los sábados a las 17:00."
    knowledge_document_save(document=document)

    assert list(document.chunks.values_list("index", "text", "search_config")) == [
        (0, "Nuevo horario: el culto es los sábados a las 17:00.", "spanish")
    ]
    assert not old_ids & set(document.chunks.values_list("id", flat=True))
    assert knowledge_search(query="sábados")[0].document_id == document.id


def test_inactive_documents_are_not_retrieved(church_knowledge):
    church_knowledge[0].active = False
    church_knowledge[0].save()

    assert [c.document_id for c in knowledge_search(query="culto domingo")] == []


def test_full_text_ranks_the_passage_with_more_query_terms_first(church_knowledge):
    results = knowledge_search(query="¿Hay aparcamiento en la plaza del mercado?")

    assert results[0].document_title == "Ubicación"
    assert 0 < results[0].score < 1
    assert results == sorted(results, key=lambda r: -r.score)


def test_spanish_stemming_finds_plural_and_verb_forms(church_knowledge):
    # "cultos" in the text, "culto" in the question; "reunión" ~ "reuniones".
    assert knowledge_search(query="culto")[0].document_title == "Horarios de culto"
    assert knowledge_search(query="reuniones de oración")[0].document_title == "Horarios de culto"


def test_english_documents_use_the_english_configuration(db):
    document = knowledge_document_create(
        title="Opening hours", content="The office opens on weekdays from nine to five.", language="en"
    )

    [result] = knowledge_search(query="when is the office opening?")
    assert result.document_id == document.id
    assert document.chunks.get().search_config == "english"


def test_each_search_configuration_has_its_gin_index():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'assistant_knowledgechunk' "
            "AND indexname LIKE 'assistant_chunk_fts_%%' ORDER BY indexname"
        )
        rows = cursor.fetchall()
    assert [name for name, _ in rows] == [
        "assistant_chunk_fts_english",
        "assistant_chunk_fts_simple",
        "assistant_chunk_fts_spanish",
    ]
    assert all("USING gin (to_tsvector(" in definition for _, definition in rows)


def test_embeddings_are_stored_when_the_provider_offers_them(openai_emulator, settings):
    settings.AI_EMBEDDING_MODEL = "text-embedding-3-small"

    document = knowledge_document_create(title="Horarios", content="Culto el domingo a las 10:00.")

    chunk = document.chunks.get()
    assert chunk.embedding == pytest.approx(hashed_embedding("Culto el domingo a las 10:00."), abs=1e-6)
    assert chunk.embedding_model == "text-embedding-3-small"
    assert openai_emulator.embedding_requests() == [
        {"model": "text-embedding-3-small", "input": ["Culto el domingo a las 10:00."], "encoding_format": "base64"}
    ]


def test_hybrid_ranking_embeds_the_question_and_blends_the_scores(openai_emulator, settings):
    settings.AI_EMBEDDING_MODEL = "text-embedding-3-small"
    knowledge_document_create(title="Horarios", content="Culto el domingo a las 10:00.")
    knowledge_document_create(title="Ubicación", content="Calle Mayor 12, junto al mercado.")
    openai_emulator.reset()
    openai_emulator.reply_with("A las 10:00.")

    answer = ai_answer_generate(contact_key="+34600000301", text="culto domingo")

    assert answer.text == "A las 10:00."
    assert openai_emulator.embedding_requests()[0]["input"] == ["culto domingo"]
    text_only = knowledge_search(query="culto domingo")
    hybrid = knowledge_search(query="culto domingo", query_embedding=hashed_embedding("culto domingo"))
    assert hybrid[0].chunk_id == text_only[0].chunk_id == answer.chunk_ids[0]
    assert hybrid[0].score != text_only[0].score


def test_an_embedding_outage_leaves_the_document_searchable_by_full_text(openai_emulator, settings):
    settings.AI_EMBEDDING_MODEL = "text-embedding-3-small"
    openai_emulator.fail_next(500)

    document = knowledge_document_create(title="Horarios", content="Culto el domingo a las 10:00.")

    assert document.chunks.get().embedding is None
    assert knowledge_search(query="domingo")[0].document_id == document.id


def test_text_markdown_and_pdf_uploads_become_content():
    assert knowledge_text_from_file(file_name="a.md", content="# Título\r\n\r\nTexto".encode()) == "# Título\n\nTexto"
    assert knowledge_text_from_file(file_name="a.txt", content="café".encode("cp1252")) == "café"
    assert knowledge_text_from_file(file_name="a.pdf", content=pdf_bytes("Uno", "Dos")) == "Uno\n\nDos"
    with pytest.raises(KnowledgeUploadError, match=r"only \.txt, \.md and \.pdf"):
        knowledge_text_from_file(file_name="a.docx", content=b"PK")
    with pytest.raises(KnowledgeUploadError, match="cannot be read"):
        knowledge_text_from_file(file_name="a.pdf", content=b"%PDF-1.4 broken")


def test_chunk_rows_are_unique_per_document_and_index(church_knowledge):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        KnowledgeChunk.objects.create(document=church_knowledge[0], index=0, text="dup")
    assert KnowledgeDocument.objects.count() == 2


def test_nul_bytes_and_lone_surrogates_in_content_are_dropped_before_storing():
    document = knowledge_document_create(title="Raro\x00", content="Culto\x00 el domingo \ud800a las 10:00.")

    document.refresh_from_db()
    assert (document.title, document.content) == ("Raro", "Culto el domingo a las 10:00.")
    assert document.chunks.get().text == "Culto el domingo a las 10:00."
