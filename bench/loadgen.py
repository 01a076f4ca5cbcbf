"""A small HTTP/1.1 load generator on asyncio streams (keep-alive, one request in flight per connection).

`open_loop` sends request *i* at `start + i / rate` whatever the server does, and measures each latency from that
scheduled time, so a stalled server shows up as latency instead of as a quietly lower send rate (no coordinated
omission). `closed_loop` keeps `connections` requests in flight for `duration` seconds: the maximum throughput,
used when wrk is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HttpRequest:
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "POST"

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(self.body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass
class Sample:
    index: int
    # Wall-clock time the request was due (open loop) or written (closed loop).
    sent_at: float
    latency: float
    status: int
    body: bytes = b""


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    duration: float = 0.0
    errors: int = 0

    @property
    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for sample in self.samples:
            counts[sample.status] = counts.get(sample.status, 0) + 1
        return counts


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; 0.0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(result: LoadResult) -> dict:
    latencies = [s.latency for s in result.samples if 200 <= s.status < 300]
    ok = len(latencies)
    return {
        "requests": len(result.samples),
        "ok": ok,
        "errors": result.errors + len(result.samples) - ok,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "duration_s": round(result.duration, 3),
        "throughput_rps": round(ok / result.duration, 1) if result.duration else 0.0,
        "latency_ms": {
            name: round(percentile(latencies, q) * 1000, 2)
            for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("max", 100))
        },
    }


class _Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(payload)
                await self.writer.drain()
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _open_loop(host, port, payloads, rate, connections, keep_bodies) -> LoadResult:
    result = LoadResult()
    counter = itertools.count()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    wall_offset = time.time() - loop.time()

    async def run_connection():
        connection = _Connection(host, port)
        while (index := next(counter)) < len(payloads):
            due = start + index / rate
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            try:
                status, body = await connection.request(payloads[index])
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                result.errors += 1
                status, body = 0, b""
            result.samples.append(
                Sample(index, due + wall_offset, loop.time() - due, status, body if keep_bodies else b"")
            )
        await connection.close()

    await asyncio.gather(*(run_connection() for _ in range(connections)))
    result.duration = loop.time() - start
    return result


def open_loop(
    *, host: str, port: int, requests: list[HttpRequest], rate: float, connections: int = 64, keep_bodies=False
) -> LoadResult:
    """Send every request at `rate` per second; latencies are measured from each request's due time."""
    payloads = [r.encode(f"{host}:{port}") for r in requests]
    return asyncio.run(_open_loop(host, port, payloads, rate, connections, keep_bodies))


async def _closed_loop(host, port, payloads, duration, connections) -> LoadResult:
    result = LoadResult()
    counter = itertools.count()
    loop = asyncio.get_running_loop()
    start = loop.time()
    wall_offset = time.time() - loop.time()

    async def run_connection():
        connection = _Connection(host, port)
        while loop.time() - start < duration and (index := next(counter)) < len(payloads):
            sent = loop.time()
            try:
                status, _ = await connection.request(payloads[index])
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                result.errors += 1
                status = 0
            result.samples.append(Sample(index, sent + wall_offset, loop.time() - sent, status))
        await connection.close()

    await asyncio.gather(*(run_connection() for _ in range(connections)))
    result.duration = loop.time() - start
    return result


def closed_loop(
    *, host: str, port: int, requests: list[HttpRequest], duration: float, connections: int = 32
) -> LoadResult:
    """As many requests as `connections` in flight allow, for `duration` seconds (or until requests run out)."""
    payloads = [r.encode(f"{host}:{port}") for r in requests]
    return asyncio.run(_closed_loop(host, port, payloads, duration, connections))
