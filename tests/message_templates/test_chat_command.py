"""`manage.py chat`: the terminal chat goes through the real pipeline and prints the templated replies."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.interactions.models import Direction, Message
from apps.message_templates.models import DemoEvent
from apps.message_templates.seed import message_templates_demo_seed
from apps.message_templates.services import intent_index_invalidate, value_format

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox_demo(settings, broker, worker):
    settings.SANDBOX_ENABLED = True
    settings.DEFAULT_CHANNEL = "sandbox"
    message_templates_demo_seed()
    intent_index_invalidate()
    yield
    intent_index_invalidate()


def test_chat_prints_the_templated_replies_to_each_message(sandbox_demo):
    event = DemoEvent.objects.get(name="Conferencia de Jóvenes")
    out = StringIO()
    call_command(
        "chat",
        "--phone",
        "+254700000201",
        "--name",
        "Ana",
        "-m",
        "¿Cuándo es la conferencia de jóvenes?",
        "-m",
        "necesito ayuda",
        stdout=out,
    )
    lines = [line for line in out.getvalue().splitlines() if line.startswith("relay> ")]
    date = value_format(event.starts_at, language="es")
    assert [line.rsplit("  ", 1)[0] for line in lines] == [
        f"relay> [vea_event_info] 📅 Conferencia de Jóvenes será el {date} en Auditorio principal. ¡Te esperamos!",
        "relay> [vea_request_received] Hola Ana, recibimos tu mensaje. Una persona de nuestro equipo te responderá "
        "pronto. ¡Bendiciones!",
    ]
    assert all(line.rsplit("  ", 1)[1] in ("✓", "✓✓", "✓✓ (read)") for line in lines)
    inbound = Message.objects.filter(direction=Direction.INBOUND, contact__phone="+254700000201")
    assert [m.text for m in inbound.order_by("id")] == ["¿Cuándo es la conferencia de jóvenes?", "necesito ayuda"]


def test_chat_refuses_to_run_without_the_sandbox(settings):
    settings.SANDBOX_ENABLED = False
    with pytest.raises(CommandError, match="The sandbox channel is off"):
        call_command("chat", "-m", "hola", stdout=StringIO())


def test_chat_refuses_a_bad_phone_number(settings):
    settings.SANDBOX_ENABLED = True
    with pytest.raises(CommandError, match="--phone: "):
        call_command("chat", "--phone", "12", "-m", "hola", stdout=StringIO())
