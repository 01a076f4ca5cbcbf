"""The sandbox chat page in headless Chromium, against the live server and a real Dramatiq worker."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from apps.interactions.models import Direction, Message
from apps.message_templates.models import DemoEvent
from apps.message_templates.seed import message_templates_demo_seed
from apps.message_templates.services import intent_index_invalidate, value_format

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"Chromium is not installed at {CHROMIUM}"),
]


@dataclass(frozen=True)
class Sandbox:
    url: str
    event_date: str


@pytest.fixture
def sandbox_demo(settings, live_server, broker, worker):
    """The demo data, the sandbox on, and the live server; set up before the browser opens."""
    settings.SANDBOX_ENABLED = True
    settings.DEFAULT_CHANNEL = "sandbox"
    message_templates_demo_seed()
    intent_index_invalidate()
    event = DemoEvent.objects.get(name="Conferencia de Jóvenes")
    yield Sandbox(url=live_server.url, event_date=value_format(event.starts_at, language="es"))
    intent_index_invalidate()


@pytest.fixture
def page():
    # Playwright's sync API runs an event loop in this thread: no ORM calls while it is open.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(20_000)
            yield page
        finally:
            browser.close()


def _open_chat(page, server, *, phone: str, name: str):
    page.goto(f"{server.url}/sandbox/")
    page.fill("#phone", phone)
    page.dispatch_event("#phone", "change")
    page.fill("#name", name)


def test_a_typed_question_gets_the_templated_event_reply(sandbox_demo, page):
    date = sandbox_demo.event_date
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    _open_chat(page, sandbox_demo, phone="+254700000101", name="Ana")
    page.fill("#text", "¿Cuándo es la conferencia de jóvenes?")
    page.click("#send")

    mine = page.locator(".bubble.in").first
    mine.wait_for()
    assert mine.locator(".text").inner_text() == "¿Cuándo es la conferencia de jóvenes?"
    reply = page.locator(".bubble.out").first
    reply.locator(".template").wait_for()
    assert reply.locator(".template").inner_text() == "📄 vea_event_info"
    assert reply.locator(".text").inner_text() == (
        f"📅 Conferencia de Jóvenes será el {date} en Auditorio principal. ¡Te esperamos!"
    )
    # The sandbox reports delivered, then read: the ticks turn blue.
    page.locator(".bubble.out .ticks.status-read").wait_for()
    assert reply.locator(".ticks").inner_text() == "✓✓"
    page.locator(".bubble.in .route").wait_for()
    assert mine.locator(".route").inner_text() == "template · eventos"
    assert errors == []


def test_message_text_and_profile_names_are_shown_as_text_never_run(sandbox_demo, page):
    attack = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    name = '<b onmouseover="window.__xss=3">Eve</b>'
    _open_chat(page, sandbox_demo, phone="+254700000102", name=name)
    page.fill("#text", attack)
    page.click("#send")

    page.locator(".bubble.out .template").wait_for()
    assert page.locator(".bubble.in .text").first.inner_text() == attack
    # The fallback greets the contact by profile name: the name comes back inside the reply, as text.
    reply_text = page.locator(".bubble.out .text").first.inner_text()
    assert reply_text.startswith(f"Hola {name}, recibimos tu mensaje.")
    assert page.locator("#log img, #log script, #log b").count() == 0
    assert page.evaluate("window.__xss === undefined")


def test_the_conversation_survives_a_reload(sandbox_demo, page):
    _open_chat(page, sandbox_demo, phone="+254700000103", name="Ana")
    page.fill("#text", "quiero donar")
    page.click("#send")
    page.locator(".bubble.out .template").wait_for()
    page.reload()
    page.locator(".bubble.out .template").wait_for()
    assert page.locator(".bubble").count() == 2
    assert page.locator("#phone").input_value() == "+254700000103"


def test_the_page_is_not_served_when_the_sandbox_is_off(settings, client):
    settings.SANDBOX_ENABLED = False
    assert client.get("/sandbox/").status_code == 404
    settings.SANDBOX_ENABLED = True
    page = client.get("/sandbox/")
    assert page.status_code == 200
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert b'src="/static/sandbox/chat.js"' in page.content
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 0
