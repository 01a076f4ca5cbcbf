from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.assistant.models import AIConfiguration, KnowledgeDocument
from apps.assistant.services import ai_configuration_create
from tests.assistant.conftest import pdf_bytes

pytestmark = pytest.mark.django_db

CONFIG_FORM = {
    "name": "openai",
    "provider": "openai",
    "base_url": "",
    "api_version": "",
    "deployment": "",
    "model": "gpt-4o-mini",
    "embedding_model": "",
    "transcription_model": "",
    "max_tokens": "400",
    "temperature": "0.2",
    "system_prompt": "",
    "no_knowledge_reply": "",
}


def test_a_pdf_upload_fills_the_content_and_is_chunked(admin_client):
    upload = SimpleUploadedFile("boletin.pdf", pdf_bytes("Cena navidena el 20 de diciembre."), "application/pdf")

    response = admin_client.post(
        "/admin/assistant/knowledgedocument/add/",
        {"title": "", "language": "es", "tags": "eventos", "active": "on", "content": "", "upload": upload,
         "chunks-TOTAL_FORMS": "0", "chunks-INITIAL_FORMS": "0"},
    )  # fmt: skip

    assert response.status_code == 302, response.content.decode()[:2000]
    document = KnowledgeDocument.objects.get()
    assert (document.title, document.source_file_name, document.content) == (
        "boletin", "boletin.pdf", "Cena navidena el 20 de diciembre."
    )  # fmt: skip
    assert list(document.chunks.values_list("text", flat=True)) == ["Cena navidena el 20 de diciembre."]


def test_an_unsupported_upload_is_refused_on_the_form(admin_client):
    upload = SimpleUploadedFile("notas.docx", b"PK\x03\x04", "application/octet-stream")

    response = admin_client.post(
        "/admin/assistant/knowledgedocument/add/",
        {"title": "x", "language": "es", "content": "", "upload": upload,
         "chunks-TOTAL_FORMS": "0", "chunks-INITIAL_FORMS": "0"},
    )  # fmt: skip

    assert response.status_code == 200
    assert "only .txt, .md and .pdf files can be uploaded" in response.content.decode()
    assert not KnowledgeDocument.objects.exists()


def test_the_search_preview_shows_the_ranked_chunks(admin_client, church_knowledge):
    changelist = admin_client.get("/admin/assistant/knowledgedocument/")
    assert 'href="/admin/assistant/knowledgedocument/search-preview/"' in changelist.content.decode()

    response = admin_client.get("/admin/assistant/knowledgedocument/search-preview/", {"q": "aparcamiento gratuito"})

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('class="search-result"') == 1
    assert "Ubicación" in page and "Hay aparcamiento gratuito." in page


def test_the_search_preview_says_when_nothing_matches(admin_client, church_knowledge):
    response = admin_client.get("/admin/assistant/knowledgedocument/search-preview/", {"q": "capital de Australia"})

    assert "No active chunk matches" in response.content.decode()


def test_the_search_preview_needs_staff(client, church_knowledge):
    response = client.get("/admin/assistant/knowledgedocument/search-preview/", {"q": "culto"})

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_admin_masks_the_key_and_a_blank_key_on_edit_keeps_it(admin_client):
    configuration = ai_configuration_create(
        name="openai", provider="openai", model="gpt-4o-mini", api_key="sk-live-very-secret-9876"
    )

    changelist = admin_client.get("/admin/assistant/aiconfiguration/").content.decode()
    change = admin_client.get(f"/admin/assistant/aiconfiguration/{configuration.pk}/change/").content.decode()
    assert "••••9876" in changelist and "••••9876" in change
    assert "sk-live-very-secret" not in changelist and "sk-live-very-secret" not in change

    response = admin_client.post(
        f"/admin/assistant/aiconfiguration/{configuration.pk}/change/",
        {**CONFIG_FORM, "model": "gpt-4.1-mini", "new_api_key": ""},
    )

    assert response.status_code == 302
    configuration.refresh_from_db()
    assert (configuration.model, configuration.api_key) == ("gpt-4.1-mini", "sk-live-very-secret-9876")


def test_the_admin_replaces_the_key_when_a_new_one_is_typed(admin_client):
    configuration = ai_configuration_create(name="openai", provider="openai", model="m", api_key="old-key-123456")

    admin_client.post(
        f"/admin/assistant/aiconfiguration/{configuration.pk}/change/",
        {**CONFIG_FORM, "new_api_key": "new-key-654321", "active": "on"},
    )

    configuration.refresh_from_db()
    assert (configuration.api_key, configuration.active) == ("new-key-654321", True)


def test_the_admin_refuses_an_openai_configuration_without_a_key(admin_client):
    response = admin_client.post("/admin/assistant/aiconfiguration/add/", {**CONFIG_FORM, "new_api_key": ""})

    assert response.status_code == 200
    assert "required" in response.content.decode()
    assert not AIConfiguration.objects.exists()


def test_the_test_connection_action_reports_latency_and_tokens(admin_client, openai_emulator):
    configuration = ai_configuration_create(
        name="emulated", provider="compatible", base_url=openai_emulator.openai_base_url, model="m",
        api_key=openai_emulator.api_key,
    )  # fmt: skip

    response = admin_client.post(
        "/admin/assistant/aiconfiguration/",
        {"action": "test_connection", "_selected_action": [configuration.pk]},
        follow=True,
    )

    page = response.content.decode()
    assert "Emulated: OK, model m," in page
    assert "6 prompt + 3 completion tokens" in page


def test_rebuilding_chunks_adds_embeddings_once_the_provider_offers_them(admin_client, openai_emulator, settings):
    from apps.assistant.services import knowledge_document_create

    document = knowledge_document_create(title="Horarios", content="Culto el domingo a las 10:00.")
    assert document.chunks.get().embedding is None
    settings.AI_EMBEDDING_MODEL = "text-embedding-3-small"

    response = admin_client.post(
        "/admin/assistant/knowledgedocument/",
        {"action": "rebuild_chunks", "_selected_action": [document.pk]},
        follow=True,
    )

    assert "Rebuilt 1 documents; 1 chunks have embeddings." in response.content.decode()
    assert document.chunks.get().embedding_model == "text-embedding-3-small"
