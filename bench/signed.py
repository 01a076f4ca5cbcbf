"""Signed webhook requests for the benchmarks, built with the same builders the tests use (tests/emulators).

Each request carries a fresh provider message id (so none is a duplicate) from one of `senders` contacts (so the
contact rows are updated, as for real traffic, rather than created every time).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from bench.loadgen import HttpRequest
from tests.emulators import acs_events, meta_events, twilio_requests

TARGETS = ("bare", "durable", "storage", "acs", "twilio", "meta")
BASELINE_PATHS = {
    "bare": "/bench/bare/",
    "durable": "/bench/ingest/",
    "storage": "/bench/storage/",
    "inbox": f"/bench/inbox/?code={acs_events.WEBHOOK_SECRET}",
}


def sender_phone(index: int, senders: int) -> str:
    """A valid Kenyan mobile number in E.164 without the plus."""
    return f"2547{10_000_000 + index % senders:08d}"


def acs_body(index: int, senders: int, text: str) -> bytes:
    event = acs_events.received_event(text=text, sender=sender_phone(index, senders))
    return json.dumps([event]).encode()


def signed_request(target: str, index: int, *, port: int, senders: int = 1000, text: str = "hola") -> HttpRequest:
    """Request number `index` for `target` ("bare", "durable", "acs", "twilio" or "meta")."""
    json_type = ("Content-Type", "application/json")
    if target in BASELINE_PATHS:
        return HttpRequest(BASELINE_PATHS[target], acs_body(index, senders, text), (json_type,))
    if target == "acs":
        return HttpRequest(acs_events.webhook_url(), acs_body(index, senders, text), (json_type,))
    if target == "twilio":
        path = twilio_requests.INBOUND_PATH
        form = twilio_requests.twilio_inbound_form(body=text, sender="+" + sender_phone(index, senders))
        signature = twilio_requests.twilio_signature(f"http://127.0.0.1:{port}{path}", form)
        return HttpRequest(
            path,
            urlencode(form).encode(),
            (("Content-Type", twilio_requests.FORM_CONTENT_TYPE), ("X-Twilio-Signature", signature)),
        )
    if target == "meta":
        message = meta_events.meta_text_message(body=text, sender=sender_phone(index, senders))
        body = json.dumps(meta_events.meta_delivery(messages=[message])).encode()
        return HttpRequest(
            meta_events.WEBHOOK_PATH, body, (json_type, ("X-Hub-Signature-256", meta_events.meta_signature(body)))
        )
    raise KeyError(target)


def signed_requests(target: str, count: int, *, port: int, offset: int = 0, **kwargs) -> list[HttpRequest]:
    return [signed_request(target, offset + i, port=port, **kwargs) for i in range(count)]


def write_wrk_file(requests: list[HttpRequest], path: Path) -> Path:
    """One request per line for bench/wrk_requests.lua: path, content type, extra header, value, body."""
    with path.open("w") as file:
        for request in requests:
            headers = dict(request.headers)
            content_type = headers.pop("Content-Type")
            name, value = next(iter(headers.items()), ("", ""))
            body = request.body.decode()
            if "\n" in body or "\t" in body:
                raise ValueError("bodies must be single-line (JSON or urlencoded)")
            file.write(f"{request.path}\t{content_type}\t{name}\t{value}\t{body}\n")
    return path
