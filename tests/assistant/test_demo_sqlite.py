"""`make run`'s no-AI mode: SQLite, the demo knowledge, answers from retrieval (run as the real commands)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.assistant.seed import DOCUMENTS

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = {
    "¿A qué hora es el culto del domingo?": "Horarios de reuniones",
    "¿Dónde están ubicados?": "Ubicación y cómo llegar",
    "¿Tienen estacionamiento?": "Ubicación y cómo llegar",
    "¿Qué grupos de jóvenes hay?": "Grupos y ministerios",
    "¿Cuál es la capital de Australia?": None,
}
PROBE = """
import json, os
from apps.assistant.services import ai_answer_generate, ai_configured
from apps.assistant.models import KnowledgeChunk
out = {"configured": ai_configured(), "answers": {}}
for question in json.loads(os.environ["QUESTIONS"]):
    answer = ai_answer_generate(contact_key=question, text=question)
    titles = [KnowledgeChunk.objects.get(pk=i).document.title for i in answer.chunk_ids]
    out["answers"][question] = [answer.source, titles, answer.text]
print("RESULT" + json.dumps(out))
"""


def _manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_the_demo_answers_from_retrieval_on_sqlite_without_an_ai_key(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "OPENAI_", "AI_", "DJANGO_", "FIELD_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_DEBUG="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        QUESTIONS=json.dumps(list(QUESTIONS)),
    )
    _manage("migrate", "--noinput", "-v", "0", env=env)
    first = _manage("seed_demo", "--only", "assistant", env=env)
    again = _manage("seed_demo", "--only", "assistant", env=env)
    assert f"{len(DOCUMENTS)} knowledge documents created, 0 updated" in first
    assert "0 knowledge documents created, 0 updated" in again

    output = _manage("shell", "-c", PROBE, env=env)
    result = json.loads(output.split("RESULT", 1)[1])

    assert result["configured"] is False
    for question, title in QUESTIONS.items():
        source, titles, text = result["answers"][question]
        if title is None:
            assert (source, titles, text) == ("none", [], ""), question
        else:
            assert (source, titles) == ("retrieval", [title]), question
            assert text.startswith("Respuesta automática con un extracto de nuestra información:\n\n*" + title)
