from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from apps.assistant.services import (
    ai_answer_generate,
    conversation_append,
    conversation_history,
    conversation_reset,
)

pytestmark = pytest.mark.django_db


def _wait_until_expired(contact_key: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while conversation_history(contact_key=contact_key):
        if time.monotonic() > deadline:
            raise TimeoutError("the conversation did not expire")
        time.sleep(0.05)


def test_the_context_resets_after_the_session_timeout(openai_emulator, church_knowledge, settings):
    settings.SESSION_TIMEOUT_MINUTES = 0.01  # 0.6 s
    openai_emulator.reply_with("A las 10:00.", "¿En qué puedo ayudarte?")
    ai_answer_generate(contact_key="+34600000401", text="¿A qué hora es el culto?")
    assert len(conversation_history(contact_key="+34600000401")) == 2

    _wait_until_expired("+34600000401")
    ai_answer_generate(contact_key="+34600000401", text="¿Y el culto de la tarde?")

    roles = [m["role"] for m in openai_emulator.chat_requests()[1]["messages"]]
    assert roles == ["system", "user"]


def test_the_context_is_kept_in_the_cache_with_the_session_expiry(openai_emulator, church_knowledge, settings):
    settings.SESSION_TIMEOUT_MINUTES = 30

    ai_answer_generate(contact_key="+34600000402", text="¿A qué hora es el culto?")

    [key] = list(cache.keys("assistant:conversation:*"))
    assert "+34600000402" not in key  # the phone number is hashed
    assert 1790 <= cache.ttl(key) <= 1800


def test_only_the_last_turns_are_kept(db, settings):
    settings.MAX_CONVERSATION_HISTORY = 3
    for n in range(4):
        conversation_append(contact_key="c", turns=[("user", f"pregunta {n}"), ("assistant", f"respuesta {n}")])

    assert conversation_history(contact_key="c") == [
        {"role": "assistant", "content": "respuesta 2"},
        {"role": "user", "content": "pregunta 3"},
        {"role": "assistant", "content": "respuesta 3"},
    ]


def test_a_reset_forgets_the_conversation(db):
    conversation_append(contact_key="c", turns=[("user", "hola")])

    conversation_reset(contact_key="c")

    assert conversation_history(contact_key="c") == []


def test_a_question_without_an_answer_is_still_remembered_for_the_follow_up(church_knowledge, settings):
    settings.OPENAI_API_KEY = ""

    ai_answer_generate(contact_key="c", text="¿Tienen algo para adolescentes?")

    assert conversation_history(contact_key="c") == [{"role": "user", "content": "¿Tienen algo para adolescentes?"}]


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_for_one_contact_lose_no_turn(settings):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    settings.MAX_CONVERSATION_HISTORY = 100

    def append(n: int) -> None:
        try:
            conversation_append(contact_key="busy", turns=[("user", f"mensaje {n}")])
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(append, range(40)))

    assert sorted(t["content"] for t in conversation_history(contact_key="busy")) == sorted(
        f"mensaje {n}" for n in range(40)
    )
