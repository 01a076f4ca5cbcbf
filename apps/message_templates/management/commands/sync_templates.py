"""`python manage.py sync_templates`: pull the WhatsApp templates ACS lists and upsert them."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.channels.base import ChannelError
from apps.message_templates.sync import templates_sync


class Command(BaseCommand):
    help = "Pull the ACS channel's WhatsApp templates (all pages) and upsert them by name and language."

    def add_arguments(self, parser):
        parser.add_argument("--channel-id", default="", help="ACS channel registration id (default: the setting)")

    def handle(self, *args, **options):
        try:
            report = templates_sync(channel_id=options["channel_id"])
        except ChannelError as exc:
            raise CommandError(f"ACS template sync failed: {exc}") from exc
        for label, names in (
            ("created", report.created),
            ("updated", report.updated),
            ("disabled", report.disabled),
            ("skipped", report.skipped),
        ):
            for name in names:
                self.stdout.write(f"  {label}: {name}")
        self.stdout.write(self.style.SUCCESS(report.summary()))
