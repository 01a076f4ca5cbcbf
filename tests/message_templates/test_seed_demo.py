"""`manage.py seed_demo`: idempotent demo data, and the demo question answered from the demo tables."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.utils import timezone

from apps.core.seeding import seeds
from apps.message_templates.models import (
    DataSource,
    DemoDonationMethod,
    DemoEvent,
    DemoMinistry,
    Intent,
    Keyword,
    WhatsAppTemplate,
)
from apps.message_templates.services import (
    intent_index_invalidate,
    intent_match,
    template_get,
    template_render,
    template_values_resolve,
    value_format,
)

pytestmark = pytest.mark.django_db

MODELS = (WhatsAppTemplate, Intent, Keyword, DataSource, DemoEvent, DemoMinistry, DemoDonationMethod)


def snapshot() -> dict:
    skip = {"created_at", "updated_at"}
    return {
        model.__name__: sorted(
            (
                tuple(sorted((k, repr(v)) for k, v in model_to_dict(obj).items() if k not in skip))
                for obj in model.objects.all()
            ),
        )
        for model in MODELS
    }


def test_seed_demo_twice_leaves_the_same_rows():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first = snapshot()
    call_command("seed_demo", stdout=out)
    assert snapshot() == first
    assert "message_templates_demo_seed: 4 templates, 4 intents" in out.getvalue()
    assert sorted(WhatsAppTemplate.objects.values_list("name", "language")) == [
        ("vea_contacto_ministerio", "es"),
        ("vea_event_info", "es"),
        ("vea_info_donativos", "es"),
        ("vea_request_received", "es"),
    ]
    keywords = {
        intent.template.name: set(intent.keywords.values_list("phrase", flat=True))
        for intent in Intent.objects.select_related("template")
    }
    assert {"donativo", "donación", "donar", "apoyo"} <= keywords["vea_info_donativos"]
    assert {"ministerio", "contacto", "pastor", "líder"} <= keywords["vea_contacto_ministerio"]
    assert {"evento", "actividad", "reunión", "conferencia"} <= keywords["vea_event_info"]
    assert {"información", "ayuda", "soporte", "consulta"} <= keywords["vea_request_received"]


def test_seed_demo_keeps_a_synced_templates_own_definition():
    WhatsAppTemplate.objects.create(
        name="vea_event_info", language="es", parameters=["1"], body_text="Evento: {{1}}", sample_values={"1": "X"}
    )
    call_command("seed_demo", stdout=StringIO())
    template = WhatsAppTemplate.objects.get(name="vea_event_info")
    assert (template.parameters, template.body_text) == (["1"], "Evento: {{1}}")
    assert template.data_source.name == "demo_events"


def test_seeds_are_registered_in_order():
    names = [name for name, _fn in seeds()]
    assert "apps.message_templates.seed.message_templates_demo_seed" in names


def test_the_demo_question_is_answered_with_the_event_from_the_demo_table(demo):
    event = DemoEvent.objects.get(name="Conferencia de Jóvenes")
    match = intent_match(text="¿Cuándo es la conferencia de jóvenes?")
    assert (match.intent.name, match.confidence, match.entity) == ("eventos", 1.0, "jóvenes")

    template = match.intent.template
    assert template == template_get(name="vea_event_info", language="es")
    context = {"contact_name": "Ana", "contact_phone": "+254700000001", "entity": match.entity, "text": "…"}
    rendered = template_render(template=template, values=template_values_resolve(template=template, context=context))

    date = value_format(event.starts_at, language="es")
    assert rendered.parameters == [
        ("event_name", "Conferencia de Jóvenes"),
        ("event_date", date),
        ("event_location", "Auditorio principal"),
    ]
    assert rendered.text == f"📅 Conferencia de Jóvenes será el {date} en Auditorio principal. ¡Te esperamos!"


def test_an_unknown_event_falls_back_to_the_next_upcoming_one(demo):
    upcoming = DemoEvent.objects.filter(starts_at__gte=timezone.now()).order_by("starts_at").first()
    template = template_get(name="vea_event_info")
    for entity in ("", "bautizos", "' OR 1=1 --"):
        values = template_values_resolve(template=template, context={"entity": entity})
        assert values["event_name"] == upcoming.name


@pytest.mark.parametrize(
    ("text", "template_name", "expected"),
    [
        ("Quiero donar con tarjeta", "vea_info_donativos", {"donation_method": "Tarjeta en línea"}),
        ("¿Cómo hago un donativo?", "vea_info_donativos", {"donation_method": "Transferencia bancaria"}),
        ("¿Quién es el pastor de matrimonios?", "vea_contacto_ministerio", {"ministry_name": "Matrimonios"}),
        ("contacto del ministerio de niños", "vea_contacto_ministerio", {"leader_name": "Carmen Díaz"}),
        ("¿Cuándo es el retiro?", "vea_event_info", {"event_name": "Retiro de Matrimonios"}),
        ("necesito ayuda", "vea_request_received", {"contact_name": "Ana"}),
    ],
)
def test_the_other_demo_intents_answer_from_their_demo_tables(demo, text, template_name, expected):
    match = intent_match(text=text)
    template = match.intent.template
    assert template.name == template_name
    values = template_values_resolve(template=template, context={"entity": match.entity, "contact_name": "Ana"})
    template_render(template=template, values=values)
    assert {k: values[k] for k in expected} == expected


def test_messages_without_a_demo_keyword_do_not_match(demo):
    intent_index_invalidate()
    for text in ("hola", "buenas tardes", "🙏", "donaremos luego"):
        assert intent_match(text=text) is None, text
