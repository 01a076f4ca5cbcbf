"""Template sync from ACS (emulator, real SDK, paged listing) into WhatsAppTemplate rows."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.channels.base import ChannelError
from apps.message_templates.models import DataSource, TemplateCategory, TemplateStatus, WhatsAppTemplate
from apps.message_templates.sync import template_definition_parse, templates_sync
from tests.emulators.acs import template_item
from tests.emulators.acs_events import CHANNEL_ID

pytestmark = pytest.mark.django_db

EVENT_BODY = "La {{event_name}} es el {{event_date}} en {{event_location}}. ¡Te esperamos!"


def vea_templates() -> list[dict]:
    return [
        template_item("vea_event_info", body=EVENT_BODY, named_examples=[{"param_name": "event_name", "example": "X"}]),
        template_item("vea_info_donativos", body="Puedes donar por {{1}} o {{2}}.", category="MARKETING"),
        template_item("vea_contacto_ministerio", body="Contacta a {{1}}: {{2}}", status="pending"),
        template_item("vea_request_received", body="Recibimos tu mensaje.", footer="VEA", header="Hola"),
        template_item("shipping", language="en_US", body="Ships in {{2}} or {{1}} days", status="rejected"),
    ]


def test_sync_creates_every_listed_template_across_pages(acs_emulator):
    acs_emulator.set_templates(vea_templates(), page_size=2)
    report = templates_sync()
    assert report.listed == 5
    assert sorted(report.created) == [
        "shipping (en_US)",
        "vea_contacto_ministerio (es)",
        "vea_event_info (es)",
        "vea_info_donativos (es)",
        "vea_request_received (es)",
    ]
    # Three pages of two: the first call and two nextLinks, all signed.
    assert [r.query.get("skip") for r in acs_emulator.requests] == [None, ["2"], ["4"]]
    assert all(r.path == f"/messages/channels/{CHANNEL_ID}/templates" for r in acs_emulator.requests)
    event = WhatsAppTemplate.objects.get(name="vea_event_info", language="es")
    assert (event.status, event.category, event.body_text) == (TemplateStatus.APPROVED, "utility", EVENT_BODY)
    assert (event.parameters, event.named_parameters) == (["event_name", "event_date", "event_location"], True)
    assert event.provider_content == vea_templates()[0]["content"]
    assert event.last_synced_at is not None


def test_positional_parameters_are_ordered_by_number_and_not_named(acs_emulator):
    acs_emulator.set_templates(vea_templates())
    templates_sync()
    shipping = WhatsAppTemplate.objects.get(name="shipping", language="en_US")
    assert (shipping.parameters, shipping.named_parameters, shipping.status) == (["1", "2"], False, "rejected")
    donations = WhatsAppTemplate.objects.get(name="vea_info_donativos")
    assert (donations.category, donations.parameters) == (TemplateCategory.MARKETING, ["1", "2"])
    received = WhatsAppTemplate.objects.get(name="vea_request_received")
    assert (received.parameters, received.header_text, received.footer_text) == ([], "Hola", "VEA")
    assert WhatsAppTemplate.objects.get(name="vea_contacto_ministerio").status == TemplateStatus.PENDING


def test_sync_updates_provider_fields_and_keeps_what_the_admin_curated(acs_emulator):
    source = DataSource.objects.create(name="events", query="SELECT 1")
    WhatsAppTemplate.objects.create(
        name="vea_event_info",
        language="es",
        status=TemplateStatus.PENDING,
        body_text="old",
        parameters=["x"],
        data_source=source,
        parameter_mapping={"event_name": "name"},
        static_values={"event_location": "Auditorio"},
        sample_values={"event_name": "Conf"},
        active=False,
    )
    acs_emulator.set_templates(vea_templates()[:1])
    report = templates_sync()
    assert (report.created, report.updated) == ([], ["vea_event_info (es)"])
    template = WhatsAppTemplate.objects.get(name="vea_event_info")
    assert (template.status, template.body_text, template.parameters[0]) == ("approved", EVENT_BODY, "event_name")
    assert (template.data_source, template.parameter_mapping, template.static_values, template.active) == (
        source,
        {"event_name": "name"},
        {"event_location": "Auditorio"},
        False,
    )


def test_a_second_sync_with_nothing_new_changes_nothing(acs_emulator):
    acs_emulator.set_templates(vea_templates())
    templates_sync()
    report = templates_sync()
    assert (report.created, report.updated, report.disabled, len(report.unchanged)) == ([], [], [], 5)


def test_a_template_no_longer_listed_is_disabled_but_never_synced_ones_are_left_alone(acs_emulator):
    WhatsAppTemplate.objects.create(name="hand_made", language="es", status=TemplateStatus.APPROVED)
    acs_emulator.set_templates(vea_templates())
    templates_sync()
    acs_emulator.set_templates(vea_templates()[1:])
    report = templates_sync()
    assert report.disabled == ["vea_event_info (es)"]
    assert WhatsAppTemplate.objects.get(name="vea_event_info").status == TemplateStatus.DISABLED
    assert WhatsAppTemplate.objects.get(name="hand_made").status == TemplateStatus.APPROVED


def test_an_empty_listing_disables_nothing(acs_emulator):
    acs_emulator.set_templates(vea_templates())
    templates_sync()
    acs_emulator.set_templates([])
    report = templates_sync()
    assert (report.listed, report.disabled) == (0, [])
    assert not WhatsAppTemplate.objects.filter(status=TemplateStatus.DISABLED).exists()


def test_items_without_name_or_language_are_skipped(acs_emulator):
    bad = template_item("x")
    bad["language"] = ""
    acs_emulator.set_templates([bad, template_item("ok")])
    report = templates_sync()
    assert (report.created, report.skipped) == (["ok (es)"], ["x ()"])


def test_a_refused_listing_writes_nothing(acs_emulator):
    acs_emulator.set_templates(vea_templates())
    acs_emulator.fail_next(500, body={"error": {"code": "InternalError", "message": "boom"}})
    with pytest.raises(ChannelError):
        templates_sync()
    assert WhatsAppTemplate.objects.count() == 0


def test_a_failure_on_a_later_page_writes_nothing(acs_emulator):
    acs_emulator.set_templates(vea_templates(), page_size=2)
    acs_emulator.fail_template_page(2, 503)
    with pytest.raises(ChannelError) as caught:
        templates_sync()
    assert (caught.value.permanent, caught.value.code) == (False, "ServiceUnavailable")
    assert len(acs_emulator.requests) == 1
    assert WhatsAppTemplate.objects.count() == 0


def test_the_command_prints_a_summary(acs_emulator):
    acs_emulator.set_templates(vea_templates())
    out = StringIO()
    call_command("sync_templates", stdout=out)
    text = out.getvalue()
    assert "created: vea_event_info (es)" in text
    assert (
        "5 templates listed by ACS: 5 created, 0 updated, 0 unchanged, 0 disabled (no longer listed), 0 skipped" in text
    )


def test_the_command_fails_cleanly_when_acs_refuses(acs_emulator, settings):
    settings.ACS_CONNECTION_STRING = f"endpoint={acs_emulator.base_url};accesskey=d3Jvbmcta2V5"
    with pytest.raises(CommandError, match="Denied"):
        call_command("sync_templates", stdout=StringIO())


@pytest.mark.parametrize(
    ("body", "parameters", "named"),
    [
        ("Hola {{1}}, tu cita es el {{2}}", ["1", "2"], False),
        ("{{2}} then {{1}} then {{2}}", ["1", "2"], False),
        ("Hola {{ name }} de {{city}}", ["name", "city"], True),
        ("Sin parámetros", [], False),
    ],
)
def test_parameter_names_are_parsed_from_the_body(body, parameters, named):
    definition = template_definition_parse(
        status="approved", content={"components": [{"type": "BODY", "text": body}], "category": "UTILITY"}
    )
    assert (definition.parameters, definition.named_parameters) == (parameters, named)


def test_unknown_acs_status_falls_back_to_metas_status():
    content = {"status": "DISABLED", "components": "garbage", "category": 5}
    definition = template_definition_parse(status="weird", content=content)
    assert (definition.status, definition.category, definition.body_text) == ("disabled", None, "")


def test_a_status_the_sync_changes_reaches_the_cached_intent_template_once_committed(
    acs_emulator, django_capture_on_commit_callbacks
):
    from apps.message_templates.models import Intent
    from apps.message_templates.services import intent_template

    template = WhatsAppTemplate.objects.create(name="vea_event_info", language="es", last_synced_at=None)
    intent = Intent.objects.create(name="eventos", template=template)
    assert intent_template(intent=intent).status == TemplateStatus.APPROVED  # read, and kept for the version

    acs_emulator.set_templates([template_item("vea_event_info", body=EVENT_BODY, status="paused")])
    with django_capture_on_commit_callbacks(execute=True):
        templates_sync()

    assert intent_template(intent=intent).status == "paused"
