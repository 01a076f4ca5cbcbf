"""A small threaded HTTP server that provider emulators build on.

Each emulator speaks one provider's wire protocol, checks credentials as the real service does, records every
request it accepted (and every one it refused), and can be scripted to fail: `emulator.fail_next(status,
times=…, headers=…, body=…, delay=…)`. Tests assert on `emulator.requests`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass
class ScriptedFailure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    # Process the request normally (record, side effects) but answer late / with this status.
    after_processing: bool = False


class Reply:
    """What a route answers."""

    def __init__(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


class Emulator:
    """Subclass and implement `authorize(request) -> Reply | None` and `route(request) -> Reply`."""

    name = "emulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.refused: list[RecordedRequest] = []
        self._failures: list[ScriptedFailure] = []
        self.delay = 0.0
        # Closed by `hold()`: requests wait, unanswered, until `release()`; `held` counts the waiting ones.
        self._gate = threading.Event()
        self._gate.set()
        self.held = 0
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed
            # ACK (40 ms on Linux) on every keep-alive request: P2 measured that stall, not Relay.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                emulator._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=f"{self.name}-emulator")

    # --- lifecycle -----------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.refused.clear()
            self._failures.clear()
            self.delay = 0.0
        self.release()

    # --- scripting ----------------------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay: float = 0.0,
        after_processing: bool = False,
    ) -> None:
        with self._lock:
            for _ in range(times):
                self._failures.append(ScriptedFailure(status, headers or {}, body, delay, after_processing))

    def hold(self) -> None:
        """From now on, requests are received but not answered until `release()` (a send left in flight)."""
        self._gate.clear()

    def release(self) -> None:
        """Process and answer the held requests, and every later one, normally."""
        self._gate.set()

    def wait_for(self, count: int, *, timeout: float = 10.0, predicate=None) -> list[RecordedRequest]:
        """Poll until `count` accepted requests (matching `predicate`) are recorded, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                matching = [r for r in self.requests if predicate is None or predicate(r)]
            if len(matching) >= count:
                return matching
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {len(matching)} of {count} requests after {timeout}s")
            time.sleep(0.02)

    # --- to implement -------------------------------------------------------------------------------
    def authorize(self, request: RecordedRequest) -> Reply | None:
        """None when the credentials are right, else the refusal the real service would give."""
        return None

    def route(self, request: RecordedRequest) -> Reply:
        return Reply(404, {"error": "not found"})

    # --- machinery ----------------------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        request = RecordedRequest(
            method=handler.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=dict(handler.headers.items()),
            body=body,
        )
        request.raw_path = handler.path  # type: ignore[attr-defined]
        refusal = self.authorize(request)
        if refusal is not None:
            request.status = refusal.status
            with self._lock:
                self.refused.append(request)
            return self._write(handler, refusal)
        if not self._gate.is_set():
            with self._lock:
                self.held += 1
            self._gate.wait()
            with self._lock:
                self.held -= 1
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if self.delay:
            time.sleep(self.delay)
        if failure and not failure.after_processing:
            if failure.delay:
                time.sleep(failure.delay)
            request.status = failure.status
            with self._lock:
                self.refused.append(request)
            return self._write(handler, Reply(failure.status, failure.body, failure.headers))
        reply = self.route(request)
        request.status = reply.status
        if 200 <= reply.status < 300:
            with self._lock:
                self.requests.append(request)
        else:
            with self._lock:
                self.refused.append(request)
        if failure and failure.after_processing:
            if failure.delay:
                time.sleep(failure.delay)
            reply = Reply(failure.status, failure.body, failure.headers)
        self._write(handler, reply)

    @staticmethod
    def _write(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if isinstance(reply.body, (bytes, bytearray)):
            payload = bytes(reply.body)
            content_type = reply.headers.get("Content-Type", "application/octet-stream")
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
            content_type = reply.headers.get("Content-Type", "text/plain")
        elif reply.body is None:
            payload = b""
            content_type = "application/json"
        else:
            payload = json.dumps(reply.body).encode()
            content_type = "application/json"
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            for key, value in reply.headers.items():
                if key.lower() != "content-type":
                    handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)
