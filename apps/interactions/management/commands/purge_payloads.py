"""Clear raw provider payloads and webhook bodies past the retention period."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.interactions.services import payloads_purge


class Command(BaseCommand):
    help = "Clear raw payloads and webhook log bodies older than RAW_PAYLOAD_RETENTION_DAYS."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=settings.RAW_PAYLOAD_RETENTION_DAYS)

    def handle(self, *args, **options):
        report = payloads_purge(older_than_days=options["days"])
        self.stdout.write(
            f"cleared {report.messages} message payloads, {report.status_updates} status payloads, "
            f"{report.webhook_logs} webhook bodies older than {options['days']} days"
        )
