"""Property-based tests: generated payloads through every webhook over HTTP, and through the intent normaliser.

Every generated body is correctly signed (ACS `?code=`, Twilio `X-Twilio-Signature` over the form as Django
parses it, Meta `X-Hub-Signature-256` over the exact bytes), so each one reaches the parser. The property: the
answer is a 200 (authentic, acknowledged — and ignored where unreadable) or a 400 with the JSON error shape
(413 for a generated body over the size limit);
never a 5xx, never an exception escaping the view.

Examples per webhook: RELAY_FUZZ_EXAMPLES (default 300, which keeps the whole file well under a minute; the
issue's 10,000 per webhook is `RELAY_FUZZ_EXAMPLES=10000`, see the README for the time it takes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from urllib.parse import quote

import pytest
from django.http import QueryDict
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from apps.interactions.models import Message
from apps.message_templates import matching
from apps.message_templates.services import intent_match
from tests.emulators import acs_events, meta, meta_events, twilio_requests
from tests.interactions.deliveries import deliveries_store

EXAMPLES = int(os.environ.get("RELAY_FUZZ_EXAMPLES", "300"))
# Shrinking a failure through HTTP and the database can take many minutes; the unshrunk example is printed
# anyway. RELAY_FUZZ_SHRINK=1 turns it on when investigating.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
if os.environ.get("RELAY_FUZZ_SHRINK"):
    PHASES.append(Phase.shrink)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=PHASES,
    report_multiple_bugs=False,
    derandomize=os.environ.get("RELAY_FUZZ_RANDOM", "") == "",
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
# Autocommit, as in production: one example's failed statement cannot poison the next one's transaction.
pytestmark = pytest.mark.django_db(transaction=True)

# --- generators ------------------------------------------------------------------------------------
SPECIAL_TEXT = [
    "\x00",
    "a\x00b",
    "\u202eevil\u202c",  # right-to-left override
    "\u200f\u061cمرحبا بكم",  # RTL marks + Arabic
    "שלום עולם",
    "👨‍👩‍👧‍👦🙏🏽🇰🇪",
    "\ufeff",
    "\ud800",  # lone surrogates: valid in JSON escapes, not encodable as UTF-8
    "\udfff\ud800",
    "ﷺ",  # expands 18× under NFKD
    "İstanbul ß ﬁ",
    "\r\n\t\x0b\x0c",
    "%00%ff%",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "${jndi:ldap://x/a}",
    "../../../../etc/passwd",
    "9" * 400,
    "+254700000001",
    "whatsapp:+254700000001",
    "whatsapp:",
    "US.13491208655302741918",
    "2023-07-06T18:30:19+00:00",
    "9999-12-31T23:59:59Z",
    "-1",
    "1e309",
    "",
    " ",
]
texts = st.one_of(
    st.text(max_size=60),
    st.sampled_from(SPECIAL_TEXT),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=4), st.integers(1000, 5000)),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)),
    max_leaves=20,
)


def _paths(value, prefix=()):
    """Every key path inside a JSON value (dict keys and list indexes)."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


DELETE = object()


def _mutate(payload, mutations):
    """Apply (path number, new value) mutations to a copy of a valid payload: wrong types, odd values, deletions."""
    payload = json.loads(json.dumps(payload))
    for number, value in mutations:
        paths = list(_paths(payload))
        path = paths[number % len(paths)]
        if not path:
            payload = value if value is not DELETE else payload
            continue
        parent = payload
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value is DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return payload


mutations = st.lists(st.tuples(st.integers(0, 10_000), st.one_of(json_values, st.just(DELETE))), min_size=1, max_size=5)


def _dumps(value) -> bytes:
    # ensure_ascii keeps lone surrogates as \ud800 escapes: valid JSON that decodes to unencodable text.
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def _deep(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + closer * depth


raw_bodies = st.one_of(
    st.binary(max_size=600),
    st.builds(_deep, st.integers(100, 200_000), st.sampled_from([b"[", b'{"a":[']), st.sampled_from([b"]", b"]}"])),
    st.builds(
        lambda v, junk, at: (lambda b: b[:at] + junk + b[at:])(_dumps(v)),
        json_values,
        st.binary(min_size=1, max_size=8),
        st.integers(0, 50),
    ),
    st.sampled_from(
        [b"", b"null", b"[]", b"{}", b"[null]", b"[[]]", b'"x"', b"1", b"NaN", b"\xff\xfe\x00", b"\xef\xbb\xbf[]"]
    ),
)


def acs_payloads():
    def event(kind: str):
        if kind == "received":
            return acs_events.received_event(text="hola")
        if kind == "status":
            return acs_events.status_event(message_id="3f0e0a36-0000-4000-8000-000000000001", status="Delivered")
        if kind == "image":
            return acs_events.image_event(caption="foto")
        if kind == "interactive":
            return acs_events.list_reply_event()
        return acs_events.validation_event("512d38b6-c7b8-40c8-89fe-f46f9e9622b6")

    base = st.sampled_from(["received", "status", "image", "interactive", "validation"]).map(event)
    envelope = st.sampled_from(["list", "object", "cloud", "cloud-list"])

    def build(e, shape, muts):
        if shape.startswith("cloud"):
            e = acs_events.as_cloud_event(e)
        payload = [e] if shape in ("list", "cloud-list") else e
        return _dumps(_mutate(payload, muts))

    return st.one_of(
        st.builds(build, base, envelope, mutations),
        json_values.map(_dumps),
        raw_bodies,
        st.lists(st.builds(build, base, st.just("object"), mutations), min_size=2, max_size=30).map(
            lambda items: _dumps([json.loads(i) for i in items])
        ),
    )


def meta_payloads():
    def delivery(kind: str):
        if kind == "text":
            return meta_events.meta_delivery(messages=[meta_events.meta_text_message(body="hola")])
        return meta_events.meta_delivery(statuses=[meta_events.meta_status(message_id="wamid.X", status="read")])

    base = st.sampled_from(["text", "status"]).map(delivery)
    return st.one_of(
        st.builds(lambda p, m: _dumps(_mutate(p, m)), base, mutations),
        json_values.map(_dumps),
        raw_bodies,
    )


TWILIO_FIELDS = [
    "MessageSid",
    "SmsSid",
    "AccountSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaUrl0",
    "MediaContentType0",
    "ProfileName",
    "WaId",
    "MessageType",
    "Latitude",
    "Longitude",
    "ButtonText",
    "ButtonPayload",
    "OriginalRepliedMessageSid",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "ErrorMessage",
]


def _encode_form(pairs: list[tuple[str, str]]) -> bytes:
    def part(text: str) -> str:
        return quote(text.encode("utf-8", "surrogatepass"), safe="")

    return "&".join(f"{part(k)}={part(v)}" for k, v in pairs).encode()


def twilio_bodies():
    def base(kind: str) -> dict[str, str]:
        if kind == "inbound":
            return twilio_requests.twilio_inbound_form(body="hola")
        return twilio_requests.twilio_status_form(message_sid="SM" + "b" * 32, status="delivered")

    def build(kind, replaced, dropped, extra):
        form = base(kind)
        for key in dropped:
            form.pop(key, None)
        form.update(replaced)
        return _encode_form(list(form.items()) + extra)

    field_values = st.dictionaries(st.sampled_from(TWILIO_FIELDS), texts, max_size=6)
    return st.one_of(
        st.builds(
            build,
            st.sampled_from(["inbound", "status"]),
            field_values,
            st.lists(st.sampled_from(TWILIO_FIELDS), max_size=4),
            st.lists(st.tuples(st.one_of(st.sampled_from(TWILIO_FIELDS), texts), texts), max_size=4),
        ),
        st.lists(st.tuples(texts, texts), max_size=8).map(_encode_form),
        st.binary(max_size=600),
    )


content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "application/cloudevents+json", "text/plain", ""]
)


def _assert_handled(response, body: bytes) -> None:
    # 413 is the designed answer to a generated body past WEBHOOK_MAX_BODY_BYTES (a batch of huge strings).
    assert response.status_code in (200, 400, 413), (response.status_code, response.content[:300], body[:300])
    if response.status_code == 413:
        assert len(body) > 1_048_576
    if response.status_code in (400, 413):
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}
    # An accepted delivery may wait for the worker (deferred ingest): its storing must not fail either.
    deliveries_store()


# --- the properties ----------------------------------------------------------------------------------
@FUZZ
@given(body=acs_payloads(), content_type=content_types)
def test_acs_webhook_answers_200_or_400_to_anything_with_the_right_secret(
    client, acs_emulator, settings, body, content_type
):
    # Deferred here (the worker's storing of what was accepted runs in _assert_handled); Twilio and Meta go direct.
    settings.WEBHOOK_DEFERRED_INGEST = True
    response = client.post(acs_events.webhook_url(), body, content_type=content_type or "application/json")

    _assert_handled(response, body)


@FUZZ
@given(origin=texts, method=st.sampled_from(["OPTIONS", "GET"]))
def test_acs_handshakes_never_fail_on_odd_headers(client, acs_emulator, origin, method):
    try:
        response = client.generic(method, acs_events.webhook_url(), HTTP_WEBHOOK_REQUEST_ORIGIN=origin)
    except UnicodeEncodeError:
        pytest.skip("the test client cannot send this header")  # pragma: no cover
    assert response.status_code in (200, 400, 405)
    allowed = response.headers.get("WebHook-Allowed-Origin", "")
    assert "\n" not in allowed and "\r" not in allowed


@FUZZ
@given(body=meta_payloads(), content_type=content_types)
def test_meta_webhook_answers_200_or_400_to_anything_correctly_signed(client, meta_emulator, body, content_type):
    response = client.post(
        meta_events.WEBHOOK_PATH,
        body,
        content_type=content_type or "application/json",
        HTTP_X_HUB_SIGNATURE_256=meta_events.meta_signature(body),
    )

    _assert_handled(response, body)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["hub.mode", "hub.challenge", "hub.verify_token", "x"]),
        # A query string carries bytes; the test client cannot put lone surrogates in a URL.
        st.one_of(texts.filter(_encodable), st.just(meta.VERIFY_TOKEN), st.just("subscribe")),
    )
)
def test_meta_subscription_check_answers_200_or_403_to_any_query(client, meta_emulator, params):
    response = client.get(meta_events.WEBHOOK_PATH, params)

    assert response.status_code in (200, 403)
    if response.status_code == 200:
        assert params.get("hub.mode") == "subscribe" and params.get("hub.verify_token") == meta.VERIFY_TOKEN


@FUZZ
@given(body=twilio_bodies(), path=st.sampled_from([twilio_requests.INBOUND_PATH, twilio_requests.STATUS_PATH]))
def test_twilio_webhooks_answer_200_or_400_to_any_correctly_signed_form(client, twilio_emulator, body, path):
    # Sign what Django will parse, so the request always passes verification and reaches the parser.
    parsed = QueryDict(body)
    signature = twilio_requests.twilio_signature("http://testserver" + path, parsed)

    response = client.post(
        path, body, content_type=twilio_requests.FORM_CONTENT_TYPE, HTTP_X_TWILIO_SIGNATURE=signature
    )

    _assert_handled(response, body)


def test_fuzzed_deliveries_reach_the_parser_and_some_are_persisted(client, acs_emulator, settings):
    """Guard against a fuzz suite that only ever tests the 400 path: a mutated-but-valid delivery is stored (as
    the ACS fuzz test runs: deferred, then stored by the worker's step)."""
    settings.WEBHOOK_DEFERRED_INGEST = True
    event = acs_events.received_event(text="\u202eمرحبا 👋🏽 \x00 ﷺ")

    response = client.post(acs_events.webhook_url(), [event], content_type="application/json")
    assert deliveries_store() == 1

    assert response.status_code == 200
    [message] = Message.objects.all()
    assert "\x00" not in message.text and "👋🏽" in message.text


# --- the intent normaliser -----------------------------------------------------------------------------
unicode_text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(SPECIAL_TEXT),
    st.lists(st.sampled_from([*SPECIAL_TEXT, "evento", "¿Cuándo", "DONAR", "conferéncia"]), max_size=20).map(" ".join),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=3), st.integers(1000, 20_000)),
)


NORMALISER = settings(
    max_examples=EXAMPLES * 3,
    deadline=None,
    database=None,
    derandomize=True,
    phases=PHASES,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@NORMALISER
@given(text=unicode_text)
def test_normalize_never_fails_and_gives_casefolded_words(text, memory_cap):
    normalized = matching.normalize(text)

    assert isinstance(normalized, str)
    assert normalized == normalized.casefold()
    assert all(word for word in normalized.split(" ")) or normalized == ""
    # Idempotent on text without compatibility characters ("¼" becomes "1⁄4" under NFKD, then "1 4").
    if unicodedata.normalize("NFKC", text) == text:
        assert matching.normalize(normalized) == normalized


@NORMALISER
@given(text=unicode_text)
def test_keyword_index_matching_never_fails_on_any_text(text, memory_cap):
    index = matching.KeywordIndex.build(
        [
            matching.KeywordRow(intent_id=1, intent_name="evento", priority=1, phrase="evento", language="es"),
            matching.KeywordRow(intent_id=2, intent_name="donar", priority=0, phrase="donar en línea", language="es"),
            matching.KeywordRow(intent_id=3, intent_name="rtl", priority=0, phrase="مرحبا", language="ar"),
        ]
    )

    found = index.match(text, language="es")

    assert found is None or (0.0 <= found.confidence <= 1.0 and found.intent_id in (1, 2, 3))


@FUZZ
@given(text=unicode_text, language=st.sampled_from(["", "es", "es_MX", "en", "ar", "\x00", "x" * 50]))
def test_intent_match_service_never_fails_on_any_text(text, language, memory_cap):
    found = intent_match(text=text, language=language)

    assert found is None or found.confidence >= 0


# --- what the fuzzing found, pinned as plain tests --------------------------------------------------------
@pytest.mark.parametrize(
    "event",
    [
        {**acs_events.received_event(), "id": "\ud800"},
        {**acs_events.received_event(), "subject": "advancedMessage/sender/\udfff/recipient/x"},
        (lambda e: (e["data"].update({"\udfff": 1}), e)[1])(acs_events.received_event()),
    ],
    ids=["event id", "subject", "key inside data"],
)
def test_acs_event_with_a_lone_surrogate_is_not_a_server_error(client, acs_emulator, event):
    """A JSON escape like "\\ud800" is valid JSON but not encodable text; PostgreSQL's jsonb refuses it."""
    body = json.dumps([event]).encode()
    assert b"\\ud800" in body or b"\\udfff" in body

    response = client.post(acs_events.webhook_url(), body, content_type="application/json")

    assert response.status_code in (200, 400)


def test_a_refused_body_with_nul_bytes_is_still_logged(client, acs_emulator):
    from apps.interactions.models import WebhookLog

    response = client.post(acs_events.webhook_url(), b"\x00\xff not json", content_type="application/json")

    assert response.status_code == 400
    [log] = WebhookLog.objects.filter(status_code=400)
    assert "not json" in log.body


MATCH_ONE_LONG_WORD = """
import random, resource, string, sys, time
resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, resource.RLIM_INFINITY))
from apps.message_templates import matching
index = matching.KeywordIndex.build([matching.KeywordRow(1, "evento", 1, "evento", "es")])
rng = random.Random(1)
word = "".join(rng.choice(string.ascii_lowercase) for _ in range(int(sys.argv[1])))
started = time.perf_counter()
index.match(word)
print(round(time.perf_counter() - started, 3))
"""


@pytest.mark.parametrize("length", [1000, 4096])
def test_one_long_word_is_matched_in_bounded_time_and_memory(length):
    """A WhatsApp text may be one 4,096-letter "word" (a pasted token, a base64 blob). Matching it must not
    cost seconds or gigabytes: one such message would stall or kill the worker. Run in a child process capped
    at 2 GiB so the failure is a MemoryError there, not the kernel killing the test run."""
    completed = subprocess.run(
        [sys.executable, "-c", MATCH_ONE_LONG_WORD, str(length)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
    )

    assert completed.returncode == 0, completed.stderr[-500:]
    assert float(completed.stdout.strip()) < 0.5
