"""Admin pages: template preview with validation, intents with inline keywords, data source test query."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.message_templates.models import DataSource, Intent, WhatsAppTemplate
from apps.message_templates.services import intent_index_invalidate, intent_match

from .factories import DataSourceFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def test_the_template_change_page_previews_the_body_from_sample_values(admin_client, demo):
    template = WhatsAppTemplate.objects.get(name="vea_event_info")
    page = admin_client.get(reverse("admin:message_templates_whatsapptemplate_change", args=[template.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert (
        "📅 Conferencia de Jóvenes será el sábado 12 de diciembre de 2026, 18:00 en Auditorio principal. ¡Te esperamos!"
    ) in html
    assert "<strong>Valid</strong>: ready to send." in html
    # What the data source gives for its sample context ("jóvenes") is shown too.
    assert "&quot;event_name&quot;: &quot;Conferencia de Jóvenes&quot;" in html


def test_the_preview_lists_every_validation_problem_and_escapes_values(admin_client):
    template = TemplateFactory(
        name="roto",
        parameters=["a", "b"],
        body_text="Hola {{a}} {{b}}",
        sample_values={"a": "<script>alert(1)</script>", "b": "x\ty"},
        status="paused",
    )
    html = admin_client.get(reverse("admin:message_templates_whatsapptemplate_change", args=[template.pk])).content
    html = html.decode()
    assert "<strong>Invalid</strong>" in html
    assert "<li>template &#x27;roto&#x27; is not approved (status: paused).</li>" in html
    assert "<li>Parameter &#x27;b&#x27; contains a tab.</li>" in html
    assert "<script>alert(1)</script>" not in html
    assert "Hola &lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_template_list_renders(admin_client, demo):
    page = admin_client.get(reverse("admin:message_templates_whatsapptemplate_changelist"))
    assert page.status_code == 200
    assert "vea_request_received" in page.content.decode()


def test_intents_list_shows_keyword_counts_and_the_change_page_the_inline_keywords(admin_client, demo):
    page = admin_client.get(reverse("admin:message_templates_intent_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<td class="field-keyword_count">10</td>' in html  # eventos
    intent = Intent.objects.get(name="eventos")
    change = admin_client.get(reverse("admin:message_templates_intent_change", args=[intent.pk])).content.decode()
    assert 'value="conferencia"' in change
    assert 'value="reunión"' in change


def test_saving_an_intent_with_a_new_keyword_in_admin_makes_it_match_once_committed(
    admin_client, demo, django_capture_on_commit_callbacks
):
    intent_index_invalidate()
    assert intent_match(text="¿a qué hora es el bautizo?") is None
    template = WhatsAppTemplate.objects.get(name="vea_event_info")
    with django_capture_on_commit_callbacks() as on_commit:
        response = admin_client.post(
            reverse("admin:message_templates_intent_add"),
            {
                "name": "bautizos",
                "description": "",
                "priority": "40",
                "template": str(template.pk),
                "entity_pattern": "",
                "active": "on",
                "keywords-TOTAL_FORMS": "1",
                "keywords-INITIAL_FORMS": "0",
                "keywords-MIN_NUM_FORMS": "0",
                "keywords-MAX_NUM_FORMS": "1000",
                "keywords-0-phrase": "bautizo",
                "keywords-0-language": "es",
                "keywords-0-weight": "1.0",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    # Not before the commit: a worker rebuilding then would read the old rows and keep them.
    assert intent_match(text="¿a qué hora es el bautizo?") is None
    for callback in on_commit:
        callback()
    match = intent_match(text="¿a qué hora es el bautizo?")
    assert (match.intent.name, match.keyword) == ("bautizos", "bautizo")


def test_an_invalid_entity_pattern_is_refused_by_the_intent_form(admin_client):
    response = admin_client.post(
        reverse("admin:message_templates_intent_add"),
        {
            "name": "roto",
            "priority": "0",
            "entity_pattern": "(sin cerrar",
            "active": "on",
            "keywords-TOTAL_FORMS": "0",
            "keywords-INITIAL_FORMS": "0",
            "keywords-MIN_NUM_FORMS": "0",
            "keywords-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200
    assert "Not a valid regular expression: missing ), unterminated subpattern" in response.content.decode()
    assert not Intent.objects.filter(name="roto").exists()


def test_the_data_source_test_page_shows_the_row_for_the_sample_context(admin_client, demo):
    source = DataSource.objects.get(name="demo_events")
    url = reverse("admin:message_templates_datasource_test", args=[source.pk])
    html = admin_client.get(url).content.decode()
    assert '<pre id="datasource-row"' in html
    assert "&quot;event_name&quot;: &quot;Conferencia de Jóvenes&quot;" in html
    # Another context typed into the form.
    html = admin_client.get(url, {"run": "1", "entity": "matrimonios"}).content.decode()
    assert "&quot;event_name&quot;: &quot;Retiro de Matrimonios&quot;" in html
    change = admin_client.get(reverse("admin:message_templates_datasource_change", args=[source.pk]))
    assert f'href="{url}">Test query</a>' in change.content.decode()


def test_the_data_source_test_page_shows_the_error(admin_client):
    source = DataSourceFactory(name="lento", query="SELECT pg_sleep(3) AS s", timeout_ms=100)
    html = admin_client.get(reverse("admin:message_templates_datasource_test", args=[source.pk])).content.decode()
    assert (
        '<p class="errornote" id="datasource-error">Data source &#x27;lento&#x27; failed: timed out after 100 ms</p>'
        in html
    )


def test_the_test_query_action_reports_each_data_source(admin_client, demo):
    DataSourceFactory(name="vacio", query="SELECT 1 AS x WHERE false")
    ids = DataSource.objects.filter(name__in=["demo_donation_methods", "vacio"]).values_list("pk", flat=True)
    response = admin_client.post(
        reverse("admin:message_templates_datasource_changelist"),
        {"action": "test_query", "index": "0", "_selected_action": [str(pk) for pk in ids]},
        follow=True,
    )
    reported = sorted((m.level_tag, str(m)) for m in response.context["messages"])
    assert [(level, text.split(" (")[0]) for level, text in reported] == [
        (
            "success",
            'demo_donation_methods: {"donation_method": "Tarjeta en línea", '
            '"donation_details": "https://vea.example/donar"}',
        ),
        ("warning", "vacio: no row"),
    ]


def test_the_data_source_form_refuses_non_select_queries_and_unknown_resolvers(admin_client):
    url = reverse("admin:message_templates_datasource_add")
    base = {"name": "malo", "description": "", "timeout_ms": "2000", "active": "on", "sample_context": "{}"}
    response = admin_client.post(url, {**base, "kind": "sql", "query": "DELETE FROM message_templates_demoevent"})
    assert response.status_code == 200
    assert "Only SELECT queries are allowed (found DELETE)." in response.content.decode()
    response = admin_client.post(url, {**base, "kind": "python", "resolver": "nadie", "query": ""})
    assert "No resolver named &#x27;nadie&#x27; is registered (available: " in response.content.decode()
    assert not DataSource.objects.filter(name="malo").exists()
    response = admin_client.post(url, {**base, "kind": "sql", "query": "SELECT %(entity)s AS e"})
    assert response.status_code == 302
    assert DataSource.objects.get(name="malo").query == "SELECT %(entity)s AS e"


def test_demo_table_admin_pages_render(admin_client, demo):
    for model in ("demoevent", "demoministry", "demodonationmethod"):
        assert admin_client.get(reverse(f"admin:message_templates_{model}_changelist")).status_code == 200


def test_the_sync_from_acs_action_pulls_the_templates_and_reports(admin_client, acs_emulator):
    from tests.emulators.acs import template_item

    existing = TemplateFactory(name="vea_event_info", body_text="viejo")
    acs_emulator.set_templates(
        [
            template_item("vea_event_info", body="{{event_name}} el {{event_date}} en {{event_location}}."),
            template_item("vea_request_received", body="Recibimos tu mensaje."),
        ]
    )
    response = admin_client.post(
        reverse("admin:message_templates_whatsapptemplate_changelist"),
        {"action": "sync_from_acs", "index": "0", "_selected_action": [str(existing.pk)]},
        follow=True,
    )
    reported = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert reported == [
        (
            "success",
            "Synced from ACS: 2 templates listed by ACS: 1 created, 1 updated, 0 unchanged, "
            "0 disabled (no longer listed), 0 skipped",
        )
    ]
    existing.refresh_from_db()
    assert existing.body_text == "{{event_name}} el {{event_date}} en {{event_location}}."
    assert existing.parameters == ["event_name", "event_date", "event_location"]


def test_the_sync_from_acs_action_reports_a_failure_and_changes_nothing(admin_client, acs_emulator):
    from tests.emulators.acs import template_item

    existing = TemplateFactory(name="vea_event_info", body_text="viejo")
    acs_emulator.set_templates([template_item("vea_event_info", body="nuevo")])
    acs_emulator.fail_template_page(0, 401)
    response = admin_client.post(
        reverse("admin:message_templates_whatsapptemplate_changelist"),
        {"action": "sync_from_acs", "index": "0", "_selected_action": [str(existing.pk)]},
        follow=True,
    )
    [(level, text)] = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert level == "error"
    assert text.startswith("Sync from ACS failed: ")
    existing.refresh_from_db()
    assert existing.body_text == "viejo"


def test_test_send_queues_the_template_with_its_sample_values(admin_client, demo, settings):
    from apps.interactions.models import Direction, Message

    settings.SANDBOX_ENABLED = True
    template = WhatsAppTemplate.objects.get(name="vea_event_info")
    url = reverse("admin:message_templates_whatsapptemplate_test_send", args=[template.pk])
    change = admin_client.get(reverse("admin:message_templates_whatsapptemplate_change", args=[template.pk]))
    assert f'href="{url}">Test send…</a>' in change.content.decode()
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(url, {"phone": "+254700000301", "channel": "sandbox"})
    html = response.content.decode()
    sent = Message.objects.get(direction=Direction.OUTBOUND, contact__phone="+254700000301")
    assert f'<p id="test-send-result">Queued as message {sent.pk} (queued) on sandbox.</p>' in html
    assert (sent.kind, sent.template_name, sent.template_language, sent.template_parameters) == (
        "template",
        "vea_event_info",
        "es",
        [
            ["event_name", "Conferencia de Jóvenes"],
            ["event_date", "sábado 12 de diciembre de 2026, 18:00"],
            ["event_location", "Auditorio principal"],
        ],
    )


def test_test_send_refuses_invalid_sample_values_with_the_reasons(admin_client):
    from apps.interactions.models import Message

    template = TemplateFactory(name="roto", parameters=["a"], body_text="{{a}}", sample_values={"a": "x\ny"})
    url = reverse("admin:message_templates_whatsapptemplate_test_send", args=[template.pk])
    html = admin_client.post(url, {"phone": "+254700000302", "channel": "sandbox"}).content.decode()
    errors = '<ul class="errorlist" id="test-send-errors"><li>Parameter &#x27;a&#x27; contains a newline.</li></ul>'
    assert errors in html
    assert not Message.objects.filter(template_name="roto").exists()
    html = admin_client.post(url, {"phone": "12", "channel": "sandbox"}).content.decode()
    assert 'id="test-send-errors"' in html


def test_an_intents_template_is_read_once_per_index_version_and_a_data_source_edit_in_admin_is_seen_once_committed(
    admin_client, demo, django_assert_num_queries, django_capture_on_commit_callbacks
):
    from apps.message_templates.services import intent_template

    intent = Intent.objects.get(name="eventos")
    first = intent_template(intent=intent)
    with django_assert_num_queries(0):
        again = intent_template(intent=intent)
    # Fresh instances every time: one caller's changes never reach another.
    assert again is not first and again.data_source is not first.data_source
    again.parameter_mapping["event_name"] = "changed"
    assert intent_template(intent=intent).parameter_mapping == first.parameter_mapping

    source = first.data_source
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:message_templates_datasource_change", args=[source.pk]),
            {
                "name": source.name,
                "description": source.description,
                "kind": source.kind,
                "query": source.query,
                "resolver": source.resolver,
                "timeout_ms": str(source.timeout_ms + 500),
                "active": "on",
                "sample_context": json.dumps(source.sample_context),
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
    assert intent_template(intent=intent).data_source.timeout_ms == source.timeout_ms + 500
