"""Hostile input through the real entry points: oversized bodies, SQL injection, XSS and SSRF.

Each attack arrives the way an attacker would send it — a correctly signed webhook carrying hostile content —
and goes through the real pipeline (worker included) where the damage would happen.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from apps.interactions.models import Contact, Direction, Interaction, Message, StatusUpdate, WebhookLog
from apps.message_templates.datasources import datasource_run
from apps.message_templates.exceptions import DataSourceError
from apps.message_templates.models import DataSource
from apps.message_templates.seed import message_templates_demo_seed
from tests.emulators import acs_events, meta_events, twilio_requests


def _persisted() -> int:
    return Message.objects.count() + StatusUpdate.objects.count() + Contact.objects.count()


# --- 413 ----------------------------------------------------------------------------------------------------
LIMIT = 64 * 1024


def _oversized(endpoint: str, size: int) -> tuple[str, bytes, str, dict[str, str]]:
    """(path, body, content type, headers) of a correctly signed request whose body is exactly `size` bytes."""
    if endpoint == "acs":
        event = acs_events.received_event(text="")
        skeleton = json.dumps([event]).encode()
        event["data"]["content"] = "x" * (size - len(skeleton) - len(b',"content": ""'))
        body = json.dumps([event]).encode()
        body += b" " * (size - len(body))
        return acs_events.webhook_url(), body, "application/json", {}
    if endpoint in ("twilio", "twilio-status"):
        path = twilio_requests.INBOUND_PATH if endpoint == "twilio" else twilio_requests.STATUS_PATH
        form = twilio_requests.twilio_inbound_form(body="")
        base = len(twilio_requests.twilio_signed(path, form)[0])
        form["Body"] = "x" * (size - base)
        body, headers = twilio_requests.twilio_signed(path, form)
        return path, body.encode(), twilio_requests.FORM_CONTENT_TYPE, headers
    payload = meta_events.meta_delivery(messages=[meta_events.meta_text_message(body="")])
    base = len(json.dumps(payload).encode())
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "x" * (size - base)
    body, headers = meta_events.meta_signed(payload)
    return meta_events.WEBHOOK_PATH, body, "application/json", headers


ENDPOINTS = ["acs", "twilio", "twilio-status", "meta"]


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_webhook_answers_413_to_a_body_over_the_limit_even_when_signed(
    client, settings, acs_emulator, twilio_emulator, meta_emulator, endpoint
):
    settings.WEBHOOK_MAX_BODY_BYTES = LIMIT
    path, body, content_type, headers = _oversized(endpoint, LIMIT + 1)
    assert len(body) == LIMIT + 1

    response = client.post(path, body, content_type=content_type, **headers)

    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "PAYLOAD_TOO_LARGE",
            "message": f"Request body over {LIMIT} bytes.",
            "details": {"max_bytes": LIMIT},
        }
    }
    assert _persisted() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_webhook_answers_413_to_an_unsigned_oversized_body_before_checking_anything(
    client, settings, acs_emulator, twilio_emulator, meta_emulator, endpoint
):
    settings.WEBHOOK_MAX_BODY_BYTES = LIMIT
    path, body, content_type, _ = _oversized(endpoint, LIMIT + 1)

    response = client.post(path.split("?")[0], body, content_type=content_type)

    assert response.status_code == 413
    assert _persisted() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_exactly_at_the_limit_is_accepted(
    client, settings, acs_emulator, twilio_emulator, meta_emulator, endpoint
):
    settings.WEBHOOK_MAX_BODY_BYTES = LIMIT
    path, body, content_type, headers = _oversized(endpoint, LIMIT)
    assert len(body) == LIMIT

    response = client.post(path, body, content_type=content_type, **headers)

    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_the_default_limit_refuses_a_two_megabyte_delivery(client, settings, acs_emulator):
    path, body, content_type, _ = _oversized("acs", settings.WEBHOOK_MAX_BODY_BYTES + 1)

    response = client.post(path, body, content_type=content_type)

    assert response.status_code == 413
    assert settings.WEBHOOK_MAX_BODY_BYTES == 1_048_576


# --- SQL injection through message text into data sources -------------------------------------------------
INJECTIONS = [
    "¿Cuándo es el retiro'; DROP TABLE message_templates_demoevent; --",
    "retiro' OR '1'='1",
    "retiro%' UNION SELECT username, password, email FROM auth_user --",
    "retiro\\'; DELETE FROM interactions_contact; --",
    "retiro $$; TRUNCATE message_templates_demoevent; $$",
    "retiro'); UPDATE auth_user SET is_superuser = true; --",
    "retiro %(contact_phone)s %s %% {0} ${1}",
]


def _tables_fingerprint() -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, starts_at, location FROM message_templates_demoevent ORDER BY name")
        events = cursor.fetchall()
        cursor.execute("SELECT username, password, is_superuser FROM auth_user ORDER BY username")
        users = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        tables = cursor.fetchone()[0]
    return {"events": events, "users": users, "tables": tables}


@pytest.mark.django_db(transaction=True)
def test_sql_injection_in_message_text_is_bound_and_answered_like_any_message(client, acs_emulator, drain):
    """Through the ACS webhook and the worker: the demo event data source binds the text; nothing changes."""
    message_templates_demo_seed()
    get_user_model().objects.create_superuser("admin", "admin@example.com", "s3cret-pass-word")
    before = _tables_fingerprint()
    assert len(before["events"]) == 4

    for i, text in enumerate(INJECTIONS):
        event = acs_events.received_event(text=text, sender=f"25470000{i:04d}")
        response = client.post(acs_events.webhook_url(), [event], content_type="application/json")
        assert response.status_code == 200
    drain(timeout=60)

    assert _tables_fingerprint() == before
    interactions = list(Interaction.objects.order_by("id"))
    assert len(interactions) == len(INJECTIONS)
    assert {(i.intent, i.route, i.template_name, i.success) for i in interactions} == {
        ("eventos", "template", "vea_event_info", True)
    }
    assert len(acs_emulator.deliveries) == len(INJECTIONS)
    event_names = {name for name, _, _ in before["events"]}
    password_hash = before["users"][0][1]
    for delivery in acs_emulator.deliveries:
        sent = json.dumps(delivery.body)
        assert password_hash not in sent and "admin@example.com" not in sent
        values = [v["text"] for v in delivery.body["template"]["values"] if v.get("kind") == "text"]
        assert values[0] in event_names


@pytest.mark.django_db
@pytest.mark.parametrize("text", INJECTIONS)
def test_demo_event_data_source_binds_hostile_entities_as_parameters(text):
    message_templates_demo_seed()
    before = _tables_fingerprint()

    row = datasource_run(
        data_source=DataSource.objects.get(name="demo_events"),
        context={"entity": text, "text": text, "contact_name": text, "contact_phone": "+254700000001"},
    )

    assert row is not None and row["event_name"] in {name for name, _, _ in before["events"]}
    assert _tables_fingerprint() == before


WRITING_QUERIES = [
    "WITH gone AS (DELETE FROM message_templates_demoevent RETURNING name) SELECT name AS event_name FROM gone",
    "SELECT name AS event_name FROM message_templates_demoevent FOR UPDATE",
    "SELECT set_config('transaction_read_only', 'off', true), name FROM message_templates_demoevent",
    "SELECT nextval('message_templates_demoevent_id_seq') AS event_name",
]


@pytest.mark.django_db
@pytest.mark.parametrize("query", WRITING_QUERIES)
def test_a_data_source_that_tries_to_write_is_stopped_by_the_read_only_transaction(query):
    """Defence in depth behind the admin's SELECT check: even a SELECT that writes cannot write."""
    message_templates_demo_seed()
    before = _tables_fingerprint()
    source = DataSource.objects.create(name="hostile", query=query)

    with pytest.raises(DataSourceError) as caught:
        datasource_run(data_source=source, context={"entity": "retiro"})

    assert re.search(r"read-only|not allowed|only select|single statement", str(caught.value), re.IGNORECASE), str(
        caught.value
    )
    assert _tables_fingerprint() == before


SERVER_FILE_QUERIES = [
    "SELECT pg_read_file('/etc/passwd') AS event_name",
    "SELECT string_agg(f, ',') AS event_name FROM pg_ls_dir('/') AS f",
]


@pytest.mark.django_db
@pytest.mark.parametrize("query", SERVER_FILE_QUERIES)
def test_a_data_source_cannot_read_files_of_the_database_server(query):
    source = DataSource.objects.create(name="files", query=query)

    try:
        row = datasource_run(data_source=source, context={})
    except DataSourceError:
        return
    assert row is None or not row.get("event_name"), f"read the server's files: {str(row)[:80]}"


@pytest.mark.django_db
def test_a_slow_data_source_is_cut_off_by_its_statement_timeout():
    source = DataSource.objects.create(name="slow", query="SELECT pg_sleep(5) AS x", timeout_ms=200)

    with pytest.raises(DataSourceError) as caught:
        datasource_run(data_source=source, context={})

    assert "timed out after 200 ms" in str(caught.value)


# --- XSS through message text and profile names ------------------------------------------------------------
XSS_TEXT = '<script>alert("xss-text")</script><img src=x onerror=alert(1)>'
XSS_NAME = '"><svg onload=alert("xss-name")>'
RAW_MARKERS = ("<script>alert", "<img src=x", "<svg onload")


def _assert_escaped(html: str, *, expect: list[str]) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"raw {marker!r} in the page"
    for text in expect:
        assert text in html, f"escaped {text!r} missing"


@pytest.mark.django_db(transaction=True)
def test_admin_pages_show_hostile_message_text_and_profile_names_escaped(
    client, twilio_emulator, meta_emulator, acs_emulator, demo_templates, drain
):
    twilio_requests.twilio_post(
        client,
        twilio_requests.INBOUND_PATH,
        twilio_requests.twilio_inbound_form(body=XSS_TEXT, ProfileName=XSS_NAME, sender="+254700000011"),
    )
    meta_events.meta_post(
        client,
        meta_events.meta_delivery(
            messages=[meta_events.meta_text_message(body=XSS_TEXT, sender="254700000012")], profile_name=XSS_NAME
        ),
    )
    client.post(
        acs_events.webhook_url(),
        [acs_events.received_event(text=XSS_TEXT, sender="254700000013")],
        content_type="application/json",
    )
    drain(timeout=60)
    assert Message.objects.filter(direction=Direction.INBOUND, text=XSS_TEXT).count() == 3
    assert Contact.objects.filter(profile_name=XSS_NAME).count() == 2

    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    escaped_text = "&lt;script&gt;alert(&quot;xss-text&quot;)&lt;/script&gt;"
    escaped_name = "&quot;&gt;&lt;svg onload=alert(&quot;xss-name&quot;)&gt;"
    contact = Contact.objects.filter(profile_name=XSS_NAME).first()
    inbound = Message.objects.filter(direction=Direction.INBOUND).first()
    interaction = Interaction.objects.first()
    log = WebhookLog.objects.filter(status_code=200).first()
    pages = {
        "/admin/interactions/contact/": [escaped_name],
        f"/admin/interactions/contact/{contact.pk}/change/": [escaped_name],
        f"/admin/interactions/contact/?q={quote(XSS_NAME)}": [],
        "/admin/interactions/message/": [],
        f"/admin/interactions/message/{inbound.pk}/change/": [escaped_text],
        f"/admin/interactions/message/?q={quote(XSS_TEXT)}": [],
        "/admin/interactions/interaction/": [],
        f"/admin/interactions/interaction/{interaction.pk}/change/": [],
        "/admin/interactions/webhooklog/": [],
        f"/admin/interactions/webhooklog/{log.pk}/change/": [],
    }
    for url, expect in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_escaped(response.content.decode(), expect=expect)


@pytest.mark.django_db(transaction=True)
def test_sandbox_returns_hostile_text_as_json_data_and_its_page_never_inserts_html(
    client, sandbox, demo_templates, drain
):
    response = client.post(
        "/sandbox/api/messages/",
        {"phone": "+254700000021", "name": XSS_NAME, "text": XSS_TEXT},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    drain(timeout=30)

    listing = client.get("/sandbox/api/messages/", {"phone": "+254700000021"})
    assert listing["Content-Type"].startswith("application/json")
    assert XSS_TEXT in [m["text"] for m in listing.json()["messages"]]
    page = client.get("/sandbox/")
    assert page.status_code == 200
    _assert_escaped(page.content.decode(), expect=[])
    # The page's only script is its own file; inline script (an injected one) is forbidden by the CSP.
    policy = page["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert re.findall(r"<script[^>]*>", page.content.decode()) == ['<script src="/static/sandbox/chat.js">']
    from django.contrib.staticfiles import finders

    script = open(finders.find("sandbox/chat.js")).read()  # noqa: SIM115
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", script, flags=re.DOTALL)
    assert "textContent" in code
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", code)


# --- SSRF through media URLs ---------------------------------------------------------------------------
def _ssrf_urls(tripwire_port: int, emulator) -> dict[str, str]:
    return {
        "cloud metadata over http": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "cloud metadata over https": "https://169.254.169.254/latest/meta-data/",
        "postgres on localhost": "http://127.0.0.1:5432/",
        "a local port over https": f"https://127.0.0.1:{tripwire_port}/x",
        "a local port over http": f"http://127.0.0.1:{tripwire_port}/x",
        "userinfo pretending to be twilio": f"https://api.twilio.com@127.0.0.1:{tripwire_port}/x",
        "ipv6 loopback": f"https://[::1]:{tripwire_port}/x",
        "localhost by name": f"https://localhost:{tripwire_port}/x",
        "decimal ip": f"https://2130706433:{tripwire_port}/x",
        "file scheme": "file:///etc/passwd",
        "gopher scheme": f"gopher://127.0.0.1:{tripwire_port}/_x",
        "look-alike host": "https://api.twilio.com.evil.example/x",
        "redirect from the provider to a local port": (
            f"{emulator.base_url}/redirect?to=" + quote(f"http://127.0.0.1:{tripwire_port}/x", safe="")
        ),
        "redirect from the provider to metadata": (
            f"{emulator.base_url}/redirect?to=" + quote("http://169.254.169.254/latest/meta-data/", safe="")
        ),
    }


@pytest.mark.django_db(transaction=True)
def test_media_urls_pointing_inside_the_network_are_refused_without_a_request(
    client, twilio_emulator, demo_templates, drain, tripwire
):
    urls = _ssrf_urls(tripwire.port, twilio_emulator)
    for i, (name, url) in enumerate(urls.items()):
        form = twilio_requests.twilio_inbound_form(
            body="", sender=f"+2547000001{i:02d}", NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg"
        )
        form["MessageType"] = "image"
        response = twilio_requests.twilio_post(client, twilio_requests.INBOUND_PATH, form)
        assert response.status_code == 200, name
    drain(timeout=90)

    assert tripwire.connections == 0
    media = {m.media.get("url"): m.media for m in Message.objects.filter(direction=Direction.INBOUND)}
    assert set(media) == set(urls.values())
    for name, url in urls.items():
        assert media[url].get("error"), f"{name}: downloaded {media[url]}"
        assert not media[url].get("stored_path"), name
    # Only the two redirect hops reached the provider (the emulator); nothing else left the process.
    redirects = [r for r in twilio_emulator.requests + twilio_emulator.refused if r.path == "/redirect"]
    assert len(redirects) == 2
