"""Send one real WhatsApp message through the pipeline, or check every enabled channel's credentials.

    python manage.py test_whatsapp --phone +254700000001 --message "Hola" [--channel twilio]
    python manage.py test_whatsapp --phone +254700000001 --template vea_event_info --param nombre=Ana
    python manage.py test_whatsapp --check-config

The message is queued with the same services the pipeline uses (window, opt-out and template checks apply),
delivered by a worker (or by this process with --inline), and the command waits for the result.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.channels.base import ChannelError
from apps.channels.registry import CHANNEL_CLASSES, channel_get, channels_enabled
from apps.core.exceptions import ApplicationError
from apps.core.phone import InvalidPhoneNumber, mask, phone_normalize

SETTLED = ("sent", "delivered", "read", "failed", "unknown")


class Command(BaseCommand):
    help = "Send a test WhatsApp message through the real pipeline, or check the channels' configuration."

    def add_arguments(self, parser):
        parser.add_argument("--phone", help="Recipient, E.164 (+254700000001).")
        parser.add_argument("--message", help="Free-form text (needs an open 24-hour window).")
        parser.add_argument("--template", help="Template name to send instead of free text.")
        parser.add_argument("--language", default="", help="Template language (default: the template's).")
        parser.add_argument(
            "--param", action="append", default=[], metavar="NAME=VALUE", help="Template parameter (repeatable)."
        )
        parser.add_argument("--channel", choices=sorted(CHANNEL_CLASSES), help="Channel (default: the contact's).")
        parser.add_argument("--check-config", action="store_true", help="Check every enabled channel and exit.")
        parser.add_argument("--timeout", type=float, default=30.0, help="Seconds to wait for the result.")
        parser.add_argument(
            "--inline", action="store_true", help="Deliver from this process instead of waiting for a worker."
        )

    def handle(self, *args, **options):
        if options["check_config"]:
            return self._check_config()
        if not options["phone"]:
            raise CommandError("--phone is required (or use --check-config)")
        if not options["message"] and not options["template"]:
            raise CommandError("give --message or --template")
        return self._send(options)

    # --- --check-config -----------------------------------------------------------------------------
    def _check_config(self) -> None:
        enabled = channels_enabled()
        if not enabled:
            raise CommandError("no channel is enabled")
        failures = 0
        for name in enabled:
            try:
                description = channel_get(name).check_config()
            except ChannelError as exc:
                if exc.code == "unsupported":
                    self.stdout.write(f"– {name}: enabled (no remote check for this channel)")
                    continue
                failures += 1
                self.stdout.write(self.style.ERROR(f"✗ {name}: {exc}"))
                continue
            except Exception as exc:  # a misconfigured client (bad connection string) must still be reported
                failures += 1
                self.stdout.write(self.style.ERROR(f"✗ {name}: {type(exc).__name__}: {exc}"))
                continue
            self.stdout.write(self.style.SUCCESS(f"✓ {name}: {description}"))
        if failures:
            raise CommandError(f"{failures} channel(s) failed the configuration check")

    # --- send ---------------------------------------------------------------------------------------
    def _send(self, options) -> None:
        from apps.interactions.models import Contact, Message
        from apps.interactions.services import (
            contact_resolve,
            outbound_template_create,
            outbound_text_create,
        )

        try:
            phone = phone_normalize(options["phone"])
        except InvalidPhoneNumber as exc:
            raise CommandError(f"--phone: {exc}") from exc
        channel = options["channel"] or None
        if channel and not channel_get(channel).enabled():
            raise CommandError(f"channel {channel} is not enabled in this deployment")
        # An existing contact keeps the channel they last wrote from; a new one starts on the chosen channel.
        known = Contact.objects.filter(phone=phone).exists()
        contact = contact_resolve(channel="" if known else (channel or settings.DEFAULT_CHANNEL), phone=phone)
        channel = channel or contact.channel or settings.DEFAULT_CHANNEL
        try:
            if options["template"]:
                template = self._template(options["template"], options["language"])
                values = self._params(options["param"])
                message = outbound_template_create(contact=contact, template=template, values=values, channel=channel)
                what = f"template {template.name} ({template.language})"
            else:
                message = outbound_text_create(contact=contact, text=options["message"], channel=channel)
                what = "text"
        except ApplicationError as exc:
            hint = ""
            if exc.code == "WINDOW_CLOSED" and exc.extra.get("template"):
                hint = f" Send a template instead, e.g. --template {exc.extra['template']}."
            raise CommandError(f"{exc.message}{hint}") from exc
        self.stdout.write(f"→ queued {what} #{message.pk} to {mask(phone)} on {message.channel}")

        deadline = time.monotonic() + options["timeout"]
        if options["inline"]:
            self._deliver_inline(message.pk, deadline)
        while True:
            message = Message.objects.get(pk=message.pk)
            if message.status in SETTLED or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self._report(message)

    @staticmethod
    def _template(name: str, language: str):
        from apps.message_templates.models import WhatsAppTemplate

        templates = WhatsAppTemplate.objects.filter(name=name, active=True)
        if language:
            templates = templates.filter(language=language)
        template = templates.order_by("language").first()
        if template is None:
            raise CommandError(f"no active template named {name!r}" + (f" in {language}" if language else ""))
        return template

    @staticmethod
    def _params(pairs: list[str]) -> dict[str, str]:
        values = {}
        for pair in pairs:
            name, separator, value = pair.partition("=")
            if not separator or not name:
                raise CommandError(f"--param must be NAME=VALUE, got {pair!r}")
            values[name.strip()] = value
        return values

    def _deliver_inline(self, message_id: int, deadline: float) -> None:
        from apps.interactions.services import DeliveryRetryLater, outbound_deliver

        while time.monotonic() < deadline:
            try:
                outbound_deliver(message_id=message_id)
                return
            except DeliveryRetryLater as retry:
                wait = retry.delay_ms / 1000
                self.stdout.write(f"  transient failure, retrying in {wait:.1f}s")
                time.sleep(min(wait, max(0.0, deadline - time.monotonic())))

    def _report(self, message) -> None:
        status = message.status
        detail = f" ({message.error_code}: {message.error_message})" if message.error_code else ""
        if status in ("sent", "delivered", "read"):
            self.stdout.write(
                self.style.SUCCESS(f"✓ {status}: provider message id {message.provider_message_id}{detail}")
            )
            return
        if status in ("queued", "sending"):
            raise CommandError(
                f"still {status} after the timeout{detail}: is a worker running? (--inline delivers from here)"
            )
        self.stdout.write(self.style.ERROR(f"✗ {status}{detail}"))
        raise CommandError(f"the message was not sent: {status}{detail}")
