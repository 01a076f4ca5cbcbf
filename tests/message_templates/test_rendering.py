"""Template validation before sending (DESIGN invariant 5), rendering, lookup and value resolution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.core.exceptions import NotFoundError
from apps.message_templates.models import TemplateStatus, WhatsAppTemplate
from apps.message_templates.services import (
    Rendered,
    TemplateValidationError,
    template_get,
    template_render,
    template_values_resolve,
)

from .factories import DataSourceFactory, TemplateFactory


def event_template(**fields) -> WhatsAppTemplate:
    defaults = {
        "name": "vea_event_info",
        "language": "es",
        "status": TemplateStatus.APPROVED,
        "active": True,
        "parameters": ["event_name", "event_date", "event_location"],
        "body_text": "📅 {{event_name}} será el {{event_date}} en {{ event_location }}. ¡Te esperamos!",
    }
    return WhatsAppTemplate(**{**defaults, **fields})


VALUES = {"event_name": "Conferencia de Jóvenes", "event_date": "sábado 12 de diciembre", "event_location": "Auditorio"}


def errors_of(template: WhatsAppTemplate, values: dict) -> list[str]:
    with pytest.raises(TemplateValidationError) as caught:
        template_render(template=template, values=values)
    error = caught.value
    assert error.code == "TEMPLATE_INVALID"
    assert error.extra["errors"] == error.errors
    assert error.extra["template"] == template.name
    return error.errors


def test_valid_values_render_the_body_with_parameters_in_template_order():
    template = event_template()
    shuffled = {"event_location": "Auditorio", "event_name": "Conferencia de Jóvenes", "event_date": "sábado 12"}
    rendered = template_render(template=template, values=shuffled)
    assert rendered == Rendered(
        template=template,
        parameters=[
            ("event_name", "Conferencia de Jóvenes"),
            ("event_date", "sábado 12"),
            ("event_location", "Auditorio"),
        ],
        text="📅 Conferencia de Jóvenes será el sábado 12 en Auditorio. ¡Te esperamos!",
    )


def test_positional_parameters_render_too():
    template = event_template(parameters=["1", "2"], body_text="Hola {{1}}, tu cita es el {{2}}.")
    assert (
        template_render(template=template, values={"1": "Ana", "2": "lunes"}).text == "Hola Ana, tu cita es el lunes."
    )


def test_a_missing_parameter_is_named():
    values = {k: v for k, v in VALUES.items() if k != "event_date"}
    assert errors_of(event_template(), values) == ["Missing value for parameter 'event_date'."]


def test_an_unexpected_parameter_is_named_with_the_declared_ones():
    assert errors_of(event_template(), {**VALUES, "price": "10"}) == [
        "Unexpected parameter 'price' (template 'vea_event_info' declares: event_name, event_date, event_location)."
    ]


def test_a_template_without_parameters_refuses_any_value():
    template = event_template(parameters=[], body_text="Gracias.")
    assert errors_of(template, {"x": "1"}) == [
        "Unexpected parameter 'x' (template 'vea_event_info' declares: no parameters)."
    ]
    assert template_render(template=template, values={}).text == "Gracias."


@pytest.mark.parametrize("empty", ["", " ", "   \u00a0 "])
def test_empty_and_whitespace_only_values_are_refused(empty):
    assert errors_of(event_template(), {**VALUES, "event_location": empty}) == ["Parameter 'event_location' is empty."]


@pytest.mark.parametrize("value", ["línea 1\nlínea 2", "fin\r", "a\r\nb"])
def test_newlines_are_refused(value):
    assert errors_of(event_template(), {**VALUES, "event_name": value}) == [
        "Parameter 'event_name' contains a newline."
    ]


def test_tabs_are_refused():
    assert errors_of(event_template(), {**VALUES, "event_name": "Conferencia\tJóvenes"}) == [
        "Parameter 'event_name' contains a tab."
    ]


def test_more_than_four_consecutive_spaces_are_refused_and_four_are_allowed():
    assert errors_of(event_template(), {**VALUES, "event_name": "Conferencia     Jóvenes"}) == [
        "Parameter 'event_name' contains more than four consecutive spaces."
    ]
    rendered = template_render(template=event_template(), values={**VALUES, "event_name": "Conferencia    Jóvenes"})
    assert rendered.parameters[0] == ("event_name", "Conferencia    Jóvenes")


def test_a_body_over_1024_characters_after_substitution_is_refused():
    template = event_template(parameters=["x"], body_text="Hola {{x}}")
    assert len(template_render(template=template, values={"x": "a" * 1019}).text) == 1024
    assert errors_of(template, {"x": "a" * 1020}) == ["The body is 1025 characters after substitution (maximum 1024)."]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": TemplateStatus.PAUSED}, "template 'vea_event_info' is not approved (status: paused)."),
        ({"status": TemplateStatus.PENDING}, "template 'vea_event_info' is not approved (status: pending)."),
        ({"active": False}, "template 'vea_event_info' is not active."),
        ({"language": ""}, "template 'vea_event_info' has no language."),
    ],
)
def test_templates_that_are_not_approved_active_and_with_a_language_are_refused(fields, message):
    assert errors_of(event_template(**fields), VALUES) == [message]


def test_every_problem_is_reported_at_once_and_in_the_message():
    template = event_template(status=TemplateStatus.REJECTED)
    values = {"event_name": "a\tb", "event_date": "", "extra": "x"}
    errors = errors_of(template, values)
    assert errors == [
        "template 'vea_event_info' is not approved (status: rejected).",
        "Missing value for parameter 'event_location'.",
        "Unexpected parameter 'extra' (template 'vea_event_info' declares: event_name, event_date, event_location).",
        "Parameter 'event_name' contains a tab.",
        "Parameter 'event_date' is empty.",
    ]
    with pytest.raises(TemplateValidationError) as caught:
        template_render(template=template, values=values)
    assert str(caught.value).startswith("Template 'vea_event_info' (es) is invalid: ")
    assert all(e in str(caught.value) for e in errors)


def test_a_value_that_is_not_text_is_refused():
    assert errors_of(event_template(), {**VALUES, "event_date": None}) == [
        "Parameter 'event_date' must be text (got NoneType)."
    ]


def test_a_body_placeholder_the_template_does_not_declare_is_refused():
    template = event_template(parameters=["event_name"], body_text="{{event_name}} el {{event_date}}")
    assert errors_of(template, {"event_name": "Retiro"}) == [
        "The body uses {{event_date}}, which template 'vea_event_info' does not declare."
    ]


@pytest.mark.django_db
def test_template_get_falls_back_from_the_exact_language_to_its_base_then_to_any():
    es = TemplateFactory(name="saludo", language="es")
    es_mx = TemplateFactory(name="saludo", language="es_MX")
    en = TemplateFactory(name="saludo", language="en")
    TemplateFactory(name="saludo", language="fr", status=TemplateStatus.PAUSED)
    assert template_get(name="saludo", language="es_MX") == es_mx
    assert template_get(name="saludo", language="es_AR") == es
    assert template_get(name="saludo", language="es-ar") == es
    assert template_get(name="saludo", language="en_US") == en
    # Paused French does not count: any approved language instead (alphabetically first).
    assert template_get(name="saludo", language="fr") == en
    assert template_get(name="saludo") == en


@pytest.mark.django_db
def test_template_get_refuses_inactive_and_unapproved_templates():
    TemplateFactory(name="viejo", active=False)
    TemplateFactory(name="pausado", status=TemplateStatus.PAUSED)
    for name in ("viejo", "pausado", "inexistente"):
        with pytest.raises(NotFoundError) as caught:
            template_get(name=name, language="es")
        assert caught.value.code == "NOT_FOUND"
        assert caught.value.message == f"No active approved template named '{name}'."


@pytest.mark.django_db
def test_values_come_from_the_row_then_the_context_then_static_values():
    source = DataSourceFactory(
        query="SELECT 'Retiro' AS title, %(entity)s AS topic, NULL AS place, "
        "TIMESTAMP WITH TIME ZONE '2026-12-12 18:30:00+00' AS starts"
    )
    template = TemplateFactory(
        parameters=["event_name", "topic", "event_location", "event_date", "contact_name"],
        body_text="{{event_name}} {{topic}} {{event_location}} {{event_date}} {{contact_name}}",
        data_source=source,
        parameter_mapping={"event_name": "title", "event_date": "starts", "event_location": "place"},
        static_values={"event_location": "Auditorio principal", "contact_name": "amigo(a)"},
    )
    values = template_values_resolve(template=template, context={"entity": "jóvenes", "contact_name": "Ana \n López"})
    assert values == {
        "event_name": "Retiro",
        "topic": "jóvenes",
        "event_location": "Auditorio principal",
        "event_date": "sábado 12 de diciembre de 2026, 18:30",
        # Profile names are user input: whitespace collapsed rather than the reply refused.
        "contact_name": "Ana López",
    }
    no_name = template_values_resolve(template=template, context={"entity": "x"})
    assert no_name["contact_name"] == "amigo(a)"


@pytest.mark.django_db
def test_parameters_nothing_provides_are_left_for_validation_to_name():
    template = TemplateFactory(parameters=["a", "b"], body_text="{{a}} {{b}}", static_values={"a": "uno"})
    values = template_values_resolve(template=template, context={})
    assert values == {"a": "uno"}
    assert errors_of(template, values) == ["Missing value for parameter 'b'."]


def test_dates_are_written_in_the_templates_language():
    from apps.message_templates.services import value_format

    moment = datetime(2026, 12, 12, 18, 0, tzinfo=UTC)
    assert value_format(moment, language="es") == "sábado 12 de diciembre de 2026, 18:00"
    assert value_format(moment, language="en_US") == "Saturday 12 December 2026, 18:00"
    assert value_format(moment.date(), language="es_MX") == "sábado 12 de diciembre de 2026"
