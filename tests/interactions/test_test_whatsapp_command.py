"""`manage.py test_whatsapp`: configuration checks of every enabled channel, and a real send through the
pipeline's outbound services to the provider emulators."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.interactions.models import Direction, Message, MessageStatus

from .factories import ContactFactory, TemplateFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def only_twilio_and_meta(settings, twilio_emulator, meta_emulator):
    settings.ACS_ENABLED = False
    settings.SANDBOX_ENABLED = False
    settings.PUBLIC_BASE_URL = ""
    return twilio_emulator, meta_emulator


def _run(*args: str) -> str:
    out = StringIO()
    call_command("test_whatsapp", *args, stdout=out)
    return out.getvalue()


def test_check_config_reports_every_enabled_channel(only_twilio_and_meta):
    assert _run("--check-config").splitlines() == [
        "✓ twilio: Twilio OK: account Relay test account",
        "✓ meta: Meta OK: +1 555-078-3881 (Relay Resort)",
    ]


def test_check_config_fails_when_a_channel_is_misconfigured(only_twilio_and_meta, settings):
    settings.META_ACCESS_TOKEN = "expired"
    out = StringIO()
    with pytest.raises(CommandError, match="1 channel"):
        call_command("test_whatsapp", "--check-config", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "✓ twilio: Twilio OK: account Relay test account"
    assert lines[1].startswith("✗ meta: 190: Invalid OAuth access token")


def test_text_is_sent_on_twilio_and_the_result_printed(only_twilio_and_meta):
    twilio, _meta = only_twilio_and_meta
    ContactFactory(phone="+254700000001", channel="twilio")

    output = _run("--phone", "+254700000001", "--message", "Hola", "--channel", "twilio", "--inline")

    [sent] = twilio.sent
    assert sent.form["Body"] == "Hola"
    assert sent.form["To"] == "whatsapp:+254700000001"
    message = Message.objects.get(direction=Direction.OUTBOUND)
    assert message.status == MessageStatus.SENT
    assert output.splitlines() == [
        f"→ queued text #{message.pk} to +254******001 on twilio",
        f"✓ sent: provider message id {sent.sid}",
    ]


def test_template_with_parameters_is_sent_on_meta(only_twilio_and_meta):
    _twilio, meta = only_twilio_and_meta
    TemplateFactory(
        name="booking_confirmation", language="es", parameters=["nombre", "hora"], body_text="{{nombre}} {{hora}}"
    )
    ContactFactory(phone="+254700000002", channel="meta", last_inbound_at=timezone.now() - timedelta(days=3))

    output = _run(
        "--phone",
        "+254700000002",
        "--template",
        "booking_confirmation",
        "--param",
        "nombre=Ana",
        "--param",
        "hora=10:00",
        "--inline",
    )

    [request] = meta.message_requests()
    assert request.json()["template"] == {
        "name": "booking_confirmation",
        "language": {"code": "es"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "10:00"}]}
        ],
    }
    assert "✓ sent: provider message id wamid." in output


def test_free_text_outside_the_window_is_refused_with_the_template_to_use(only_twilio_and_meta, settings):
    settings.FALLBACK_TEMPLATE_NAME = "vea_request_received"
    ContactFactory(phone="+254700000003", channel="meta", last_inbound_at=timezone.now() - timedelta(days=2))
    with pytest.raises(CommandError, match="--template vea_request_received"):
        _run("--phone", "+254700000003", "--message", "Hola")
    assert Message.objects.count() == 0


def test_permanent_provider_error_is_reported_and_fails(only_twilio_and_meta):
    twilio, _meta = only_twilio_and_meta
    twilio.fail_with_code(63024, message="Invalid message recipient")
    ContactFactory(phone="+254700000004", channel="twilio")
    out = StringIO()
    with pytest.raises(CommandError, match="not sent: failed"):
        call_command("test_whatsapp", "--phone", "+254700000004", "--message", "Hola", "--inline", stdout=out)
    assert "✗ failed (63024: Invalid message recipient)" in out.getvalue()


def test_without_inline_the_command_waits_for_the_worker(only_twilio_and_meta, worker):
    twilio, _meta = only_twilio_and_meta
    ContactFactory(phone="+254700000005", channel="twilio")

    output = _run("--phone", "+254700000005", "--message", "Hola desde el worker", "--timeout", "20")

    assert [s.form["Body"] for s in twilio.sent] == ["Hola desde el worker"]
    assert "✓ sent: provider message id SM" in output


def test_arguments_are_checked(only_twilio_and_meta):
    with pytest.raises(CommandError, match="--phone"):
        _run("--message", "Hola")
    with pytest.raises(CommandError, match="--message or --template"):
        _run("--phone", "+254700000001")
    with pytest.raises(CommandError, match="NAME=VALUE"):
        TemplateFactory(name="t1")
        ContactFactory(phone="+254700000006")
        _run("--phone", "+254700000006", "--template", "t1", "--param", "oops")
