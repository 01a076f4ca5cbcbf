"""Fixtures of the hostile-input tests: the pipeline fixtures of tests/interactions, and a tripwire listener."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.interactions.conftest import demo_templates, drain, sandbox  # noqa: F401  (shared fixtures)


class Tripwire:
    """A TCP listener on 127.0.0.1 that only counts who connects: any connection is an SSRF that got through."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def tripwire():
    wire = Tripwire()
    yield wire
    wire.close()


def _virtual_memory_bytes() -> int:
    for line in open("/proc/self/status"):  # noqa: SIM115
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.fixture
def memory_cap():
    """Cap this process's address space at its current size + 1.5 GiB for the test: input that makes code
    allocate without bound raises MemoryError here instead of having the kernel kill the whole test run."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _virtual_memory_bytes() + 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
