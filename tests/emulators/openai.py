"""An OpenAI-compatible emulator: chat completions (with image parts), embeddings and audio transcriptions.

OpenAI paths (`/v1/...`, `Authorization: Bearer <key>`) and Azure OpenAI paths
(`/openai/deployments/{deployment}/...?api-version=`, `api-key: <key>` or an Entra bearer token).
Answers are scripted per test: `reply_with("a", "b")` queues replies (a string, or a dict with "text",
"status", "headers", "body", "model", "finish_reason"); `reply_by(fn)` answers with fn(request body) -> str.
With nothing scripted it answers `default_reply`. `hold()` blocks chat completions until `release()`
(a slow model without sleeping in tests). Failures: `fail_next(429, headers={"Retry-After": "7"})` etc.

Fixture `openai_emulator` (function scope) resets the session-wide server and points Relay's OPENAI_* settings
at it.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import math
import re
import struct
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest

from tests.emulators.base import Emulator, RecordedRequest, Reply

API_KEY = "sk-test-openai-emulator-key"
AZURE_API_KEY = "azure-test-emulator-key"
ENTRA_TOKEN = "entra-test-token"
# App Service managed identity: azure-identity reads IDENTITY_ENDPOINT / IDENTITY_HEADER and GETs a token there.
IDENTITY_PATH = "/msi/token"
IDENTITY_HEADER = "identity-test-header"
EMBEDDING_DIMENSIONS = 64

_AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<operation>.+)$")


def _error(status: int, message: str, *, type_: str, code: str | None = None) -> Reply:
    return Reply(status, {"error": {"message": message, "type": type_, "param": None, "code": code}})


def header(request: RecordedRequest, name: str) -> str | None:
    """A request header, whatever case the client sent it in."""
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), None)


def hashed_embedding(text: str) -> list[float]:
    """A deterministic bag-of-words vector: texts sharing words point the same way."""
    plain = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"[a-z0-9]{3,}", plain):
        vector[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % EMBEDDING_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class OpenAIEmulator(Emulator):
    name = "openai"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.api_key = API_KEY
        self.azure_api_key = AZURE_API_KEY
        self.default_reply = "Respuesta del modelo."
        self.default_transcript = "transcripción de prueba"
        self._replies: deque[Any] = deque()
        self._transcripts: deque[str] = deque()
        self._reply_fn: Callable[[dict[str, Any]], str] | None = None
        self._gate = threading.Event()
        self._gate.set()
        self.held = 0  # chat completions waiting at the gate

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._replies.clear()
            self._transcripts.clear()
            self._reply_fn = None
        self._gate.set()

    # --- scripting ----------------------------------------------------------------------------------
    def reply_with(self, *replies: Any) -> None:
        with self._lock:
            self._replies.extend(replies)

    def reply_by(self, fn: Callable[[dict[str, Any]], str]) -> None:
        self._reply_fn = fn

    def transcribe_with(self, *transcripts: str) -> None:
        with self._lock:
            self._transcripts.extend(transcripts)

    def hold(self) -> None:
        """Chat completions wait (after being recorded as in flight) until release()."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def wait_until_held(self, count: int = 1, *, timeout: float = 10.0) -> None:
        """Poll until `count` chat completions are waiting at the gate, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while self.held < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"openai: {self.held} of {count} held requests after {timeout}s")
            time.sleep(0.02)

    # --- views for assertions -----------------------------------------------------------------------
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if r.path.endswith("/chat/completions")]

    def embedding_requests(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if r.path.endswith("/embeddings")]

    def transcription_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/audio/transcriptions")]

    # --- protocol -----------------------------------------------------------------------------------
    def authorize(self, request: RecordedRequest) -> Reply | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if request.path == IDENTITY_PATH:
            if headers.get("x-identity-header") != IDENTITY_HEADER:
                return Reply(401, {"error": "invalid_request", "error_description": "bad X-IDENTITY-HEADER"})
            return None
        if request.path.startswith("/openai/"):
            if headers.get("api-key") == self.azure_api_key:
                return None
            if headers.get("authorization") == f"Bearer {ENTRA_TOKEN}":
                return None
            return Reply(
                401,
                {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to invalid subscription key or wrong API endpoint.",
                    }
                },
            )
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", type_="invalid_request_error", code="invalid_api_key")
        return None

    def route(self, request: RecordedRequest) -> Reply:
        if request.path == IDENTITY_PATH and request.method == "GET":
            resource = (request.query.get("resource") or [""])[0]
            return Reply(
                200,
                {
                    "access_token": ENTRA_TOKEN,
                    "expires_on": str(int(time.time()) + 3600),
                    "resource": resource,
                    "token_type": "Bearer",
                },
            )
        if request.method != "POST":
            return _error(405, "Method not allowed", type_="invalid_request_error")
        operation = None
        if request.path.startswith("/v1/"):
            operation = request.path[len("/v1/") :]
        else:
            match = _AZURE_PATH.match(request.path)
            if match:
                if not request.query.get("api-version"):
                    return _error(404, "Resource not found", type_="invalid_request_error", code="404")
                operation = match.group("operation")
                request.deployment = match.group("deployment")  # type: ignore[attr-defined]
        if operation == "chat/completions":
            return self._chat(request)
        if operation == "embeddings":
            return self._embeddings(request)
        if operation == "audio/transcriptions":
            return self._transcription(request)
        return _error(404, f"Unknown path {request.path}", type_="invalid_request_error")

    def _chat(self, request: RecordedRequest) -> Reply:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", type_="invalid_request_error")
        problem = self._chat_problem(body)
        if problem:
            return _error(400, problem, type_="invalid_request_error")
        if not self._gate.is_set():
            with self._lock:
                self.held += 1
            try:
                self._gate.wait(timeout=30)
            finally:
                with self._lock:
                    self.held -= 1
        with self._lock:
            scripted = self._replies.popleft() if self._replies else None
        if scripted is None:
            text = self._reply_fn(body) if self._reply_fn else self.default_reply
            scripted = {"text": text}
        elif isinstance(scripted, str):
            scripted = {"text": scripted}
        if scripted.get("status", 200) != 200:
            return Reply(scripted["status"], scripted.get("body"), scripted.get("headers"))
        text = scripted["text"]
        prompt_words = sum(len(_content_text(m.get("content")).split()) for m in body["messages"])
        return Reply(
            200,
            {
                "id": f"chatcmpl-emulator-{len(self.requests) + 1}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": scripted.get("model", body["model"]),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": scripted.get("finish_reason", "stop"),
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_words,
                    "completion_tokens": len(text.split()),
                    "total_tokens": prompt_words + len(text.split()),
                },
            },
        )

    @staticmethod
    def _chat_problem(body: Any) -> str | None:
        if not isinstance(body, dict) or not body.get("model"):
            return "you must provide a model parameter"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages must be a non-empty array"
        for message in messages:
            if message.get("role") not in ("system", "user", "assistant", "developer"):
                return f"invalid role {message.get('role')!r}"
            content = message.get("content")
            if isinstance(content, str):
                continue
            if not isinstance(content, list):
                return "content must be a string or an array of parts"
            for part in content:
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    continue
                url = (part.get("image_url") or {}).get("url", "")
                if part.get("type") == "image_url" and re.match(r"^(data:image/[a-z]+;base64,|https://)", url):
                    continue
                return f"invalid content part {part.get('type')!r}"
        return None

    def _embeddings(self, request: RecordedRequest) -> Reply:
        body = request.json()
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not body.get("model") or not isinstance(inputs, list) or not inputs:
            return _error(400, "model and input are required", type_="invalid_request_error")
        # The openai client asks for base64 (packed little-endian float32), as the real API then answers.
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": _pack(hashed_embedding(str(text))) if as_base64 else hashed_embedding(str(text)),
            }
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(str(t).split()) for t in inputs)
        return Reply(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _transcription(self, request: RecordedRequest) -> Reply:
        content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
        if not content_type.startswith("multipart/form-data"):
            return _error(400, "multipart/form-data expected", type_="invalid_request_error")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
        )
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                fields[name] = {"filename": part.get_filename(), "content": part.get_payload(decode=True)}
            else:
                fields[name] = part.get_content().strip()
        if not fields.get("model") or "file" not in fields or not fields["file"]["content"]:
            return _error(400, "model and file are required", type_="invalid_request_error")
        request.fields = fields  # type: ignore[attr-defined]
        with self._lock:
            transcript = self._transcripts.popleft() if self._transcripts else self.default_transcript
        return Reply(200, {"text": transcript})


def _pack(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


@pytest.fixture(scope="session")
def openai_emulator_server():
    emulator = OpenAIEmulator().start()
    yield emulator
    emulator.release()
    emulator.stop()


@pytest.fixture
def openai_emulator(openai_emulator_server, settings):
    """The OpenAI emulator, reset, as Relay's default provider (OPENAI_API_KEY / OPENAI_BASE_URL / AI_MODEL)."""
    openai_emulator_server.reset()
    settings.OPENAI_API_KEY = API_KEY
    settings.OPENAI_BASE_URL = openai_emulator_server.openai_base_url
    settings.AI_MODEL = "gpt-emulated"
    settings.AI_EMBEDDING_MODEL = ""
    yield openai_emulator_server
    openai_emulator_server.release()
    openai_emulator_server.reset()
