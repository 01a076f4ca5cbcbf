"""Demo data for the templates app: the four VEA templates, their intents and Spanish keywords, the demo
business tables (events, ministries, donation methods) and the data sources that read them.

Idempotent: rows are found by their natural keys and updated in place. Templates that already exist (for
example synced from ACS) keep their provider fields; only what is empty is filled in.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.seeding import seed_register

from .matching import normalize
from .models import (
    DataSource,
    DataSourceKind,
    DemoDonationMethod,
    DemoEvent,
    DemoMinistry,
    Intent,
    Keyword,
    TemplateCategory,
    TemplateStatus,
    WhatsAppTemplate,
)
from .services import intent_index_invalidate

# Finds the event the message names (by its accent-free search text), else the next upcoming event.
EVENTS_QUERY = """SELECT name AS event_name, starts_at AS event_date, location AS event_location
FROM message_templates_demoevent
WHERE starts_at >= CURRENT_TIMESTAMP
ORDER BY CASE WHEN %(entity_normalized)s <> ''
              AND search_text LIKE '%%' || %(entity_normalized)s || '%%' THEN 0 ELSE 1 END,
         starts_at
LIMIT 1"""

DONATIONS_QUERY = """SELECT name AS donation_method, details AS donation_details
FROM message_templates_demodonationmethod
ORDER BY CASE WHEN %(entity_normalized)s <> ''
              AND search_text LIKE '%%' || %(entity_normalized)s || '%%' THEN 0 ELSE 1 END,
         position, name
LIMIT 1"""

TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "vea_info_donativos",
        "category": TemplateCategory.UTILITY,
        "parameters": ["contact_name", "donation_method", "donation_details"],
        "body_text": (
            "Hola {{contact_name}}, gracias por tu deseo de apoyar la obra. Puedes donar por "
            "{{donation_method}}: {{donation_details}}. ¡Dios te bendiga!"
        ),
        "data_source": "demo_donation_methods",
        "static_values": {"contact_name": "hermano(a)"},
        "sample_values": {
            "contact_name": "Ana",
            "donation_method": "Transferencia bancaria",
            "donation_details": "Banco Ejemplo, cuenta 0123456789",
        },
    },
    {
        "name": "vea_contacto_ministerio",
        "category": TemplateCategory.UTILITY,
        "parameters": ["ministry_name", "leader_name", "ministry_phone"],
        "body_text": (
            "El ministerio {{ministry_name}} está a cargo de {{leader_name}}. "
            "Puedes escribirle o llamar al {{ministry_phone}}."
        ),
        "data_source": "demo_ministries",
        "sample_values": {
            "ministry_name": "Jóvenes",
            "leader_name": "Pastor Daniel Ruiz",
            "ministry_phone": "+525512345002",
        },
    },
    {
        "name": "vea_event_info",
        "category": TemplateCategory.UTILITY,
        "parameters": ["event_name", "event_date", "event_location"],
        "body_text": "📅 {{event_name}} será el {{event_date}} en {{event_location}}. ¡Te esperamos!",
        "data_source": "demo_events",
        "sample_values": {
            "event_name": "Conferencia de Jóvenes",
            "event_date": "sábado 12 de diciembre de 2026, 18:00",
            "event_location": "Auditorio principal",
        },
    },
    {
        "name": "vea_request_received",
        "category": TemplateCategory.UTILITY,
        "parameters": ["contact_name"],
        "body_text": (
            "Hola {{contact_name}}, recibimos tu mensaje. Una persona de nuestro equipo te responderá "
            "pronto. ¡Bendiciones!"
        ),
        "data_source": "demo_contact",
        "static_values": {"contact_name": "amigo(a)"},
        "sample_values": {"contact_name": "Ana"},
    },
]

INTENTS: list[dict[str, Any]] = [
    {
        "name": "eventos",
        "description": "Fechas y lugares de eventos, reuniones y conferencias.",
        "priority": 30,
        "template": "vea_event_info",
        "keywords": [
            "evento",
            "eventos",
            "actividad",
            "actividades",
            "reunión",
            "reuniones",
            "conferencia",
            "conferencias",
            "retiro",
            "campamento",
        ],
    },
    {
        "name": "donativos",
        "description": "Cómo donar u ofrendar.",
        "priority": 25,
        "template": "vea_info_donativos",
        "keywords": ["donativo", "donativos", "donación", "donaciones", "donar", "apoyo", "ofrenda", "diezmo"],
    },
    {
        "name": "contacto_ministerio",
        "description": "Con quién hablar en cada ministerio.",
        "priority": 20,
        "template": "vea_contacto_ministerio",
        "keywords": ["ministerio", "ministerios", "contacto", "contactar", "pastor", "líder", "lider"],
    },
    {
        "name": "informacion_general",
        "description": "Preguntas generales; contesta que el mensaje fue recibido.",
        "priority": 0,
        "template": "vea_request_received",
        "keywords": ["información", "informes", "ayuda", "soporte", "consulta"],
    },
]

MINISTRIES = [
    ("General", "Pastor Samuel Ortega", "+525512345001", "contacto@vea.example", 0),
    ("Jóvenes", "Pastor Daniel Ruiz", "+525512345002", "jovenes@vea.example", 1),
    ("Matrimonios", "Roberto y Lucía Méndez", "+525512345003", "matrimonios@vea.example", 2),
    ("Niños", "Carmen Díaz", "+525512345004", "ninos@vea.example", 3),
    ("Alabanza", "Javier Torres", "+525512345005", "alabanza@vea.example", 4),
]

DONATION_METHODS = [
    ("Transferencia bancaria", "Banco Ejemplo, cuenta 0123456789, a nombre de Iglesia VEA", 0),
    ("Tarjeta en línea", "https://vea.example/donar", 1),
    ("Efectivo", "en la mesa de ofrendas al final de cada reunión", 2),
]


def _events(today) -> list[tuple[str, datetime, str, str]]:
    # Dates relative to today, so the demo always has upcoming events; running twice on one day changes nothing.
    def at(days: int, hour: int) -> datetime:
        return timezone.make_aware(datetime.combine(today + timedelta(days=days), time(hour, 0)))

    return [
        ("Reunión de oración", at(3, 19), "Capilla", "Oración semanal abierta a todos."),
        ("Conferencia de Jóvenes", at(10, 18), "Auditorio principal", "Tres días de alabanza y enseñanza."),
        ("Retiro de Matrimonios", at(24, 9), "Casa de retiro El Roble", "Fin de semana para parejas."),
        ("Campamento de Niños", at(38, 8), "Parque Los Pinos", "Juegos, historias bíblicas y manualidades."),
    ]


@seed_register(order=100)
@transaction.atomic
def message_templates_demo_seed() -> str:
    today = timezone.localdate()
    for name, starts_at, location, description in _events(today):
        DemoEvent.objects.update_or_create(
            name=name,
            defaults={
                "starts_at": starts_at,
                "location": location,
                "description": description,
                "search_text": normalize(f"{name} {description}"),  # as demo_search_text_refresh
            },
        )
    for name, leader, phone, email, position in MINISTRIES:
        DemoMinistry.objects.update_or_create(
            name=name,
            defaults={
                "leader": leader,
                "phone": phone,
                "email": email,
                "position": position,
                "search_text": normalize(f"ministerio de {name} {leader}"),
            },
        )
    for name, details, position in DONATION_METHODS:
        DemoDonationMethod.objects.update_or_create(
            name=name, defaults={"details": details, "position": position, "search_text": normalize(name)}
        )

    sources = {
        "demo_events": {
            "kind": DataSourceKind.SQL,
            "query": EVENTS_QUERY,
            "description": "Demo: the event named in the message, else the next upcoming one.",
            "sample_context": {"entity": "jóvenes"},
        },
        "demo_donation_methods": {
            "kind": DataSourceKind.SQL,
            "query": DONATIONS_QUERY,
            "description": "Demo: the donation method named in the message, else the first one.",
            "sample_context": {"entity": "tarjeta"},
        },
        "demo_ministries": {
            "kind": DataSourceKind.PYTHON,
            "resolver": "demo_ministry",
            "description": "Demo: the ministry named in the message (Python resolver).",
            "sample_context": {"entity": "matrimonios"},
        },
        "demo_contact": {
            "kind": DataSourceKind.PYTHON,
            "resolver": "contact",
            "description": "The contact's own fields (name, phone).",
            "sample_context": {"contact_name": "Ana", "contact_phone": "+254700000001"},
        },
    }
    data_sources = {}
    for name, fields in sources.items():
        data_sources[name], _ = DataSource.objects.update_or_create(name=name, defaults=fields)

    templates = {}
    for spec in TEMPLATES:
        template, _created = WhatsAppTemplate.objects.get_or_create(
            name=spec["name"],
            language="es",
            defaults={
                "category": spec["category"],
                "status": TemplateStatus.APPROVED,
                "parameters": spec["parameters"],
                "body_text": spec["body_text"],
            },
        )
        # A template synced from the provider keeps its own definition; the demo fills only the gaps.
        changed = []
        for field, value in (
            ("parameters", spec["parameters"]),
            ("body_text", spec["body_text"]),
            ("static_values", spec.get("static_values", {})),
            ("sample_values", spec.get("sample_values", {})),
        ):
            if not getattr(template, field) and value:
                setattr(template, field, value)
                changed.append(field)
        if template.data_source_id is None:
            template.data_source = data_sources[spec["data_source"]]
            changed.append("data_source")
        if changed:
            template.save(update_fields=[*changed, "updated_at"])
        templates[spec["name"]] = template

    for spec in INTENTS:
        intent, _ = Intent.objects.update_or_create(
            name=spec["name"],
            defaults={
                "description": spec["description"],
                "priority": spec["priority"],
                "template": templates[spec["template"]],
                "active": True,
            },
        )
        for phrase in spec["keywords"]:
            Keyword.objects.get_or_create(intent=intent, language="es", phrase=phrase)

    transaction.on_commit(intent_index_invalidate)
    return (
        f"{len(TEMPLATES)} templates, {len(INTENTS)} intents, {sum(len(i['keywords']) for i in INTENTS)} keywords, "
        f"{DemoEvent.objects.count()} events, {DemoMinistry.objects.count()} ministries, "
        f"{DemoDonationMethod.objects.count()} donation methods"
    )
