"""Re-enqueue inbound / outbound messages left unprocessed (broker outage, crashed worker)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.interactions.services import sweeper_run


class Command(BaseCommand):
    help = "Re-enqueue messages still waiting to be processed or delivered."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, default=settings.SWEEPER_STALE_SECONDS, help="seconds (default: %(default)s)"
        )

    def handle(self, *args, **options):
        report = sweeper_run(older_than_seconds=options["older_than"])
        self.stdout.write(
            f"re-enqueued {report.inbound} inbound and {report.outbound} outbound "
            f"({report.failed_enqueues} enqueue failures); gave up {report.ai_given_up} AI answers"
        )
