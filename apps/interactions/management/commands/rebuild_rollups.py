"""Recompute the statistics rollups from the Interaction rows, with a progress bar."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from apps.interactions.statistics.services import rollups_refresh


def _since(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None and (day := parse_date(value)) is not None:
        moment = datetime.combine(day, time.min)
    if moment is None:
        raise CommandError(f"--since: not a date or datetime: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


class Command(BaseCommand):
    help = "Rebuild the statistics rollups (all of them, or from --since on)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="Date or ISO datetime (UTC when naive); default: everything.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, since=None, no_progress=False, **options):
        width = 30
        show = not no_progress

        def progress(day, done, total):
            if not show:
                return
            filled = round(width * done / total)
            bar = "#" * filled + "-" * (width - filled)
            end = "\n" if done == total else ""
            self.stdout.write(f"\r[{bar}] {done}/{total} days  {day:%Y-%m-%d}", ending=end)
            self.stdout.flush()

        result = rollups_refresh(since=_since(since) if since else None, full=since is None, progress=progress)
        if result.days == 0:
            self.stdout.write("No interactions to roll up.")
        summary = f"Rolled up {result.days} day(s), {result.hourly_rows} hourly rows"
        self.stdout.write(self.style.SUCCESS(f"{summary}, through {result.through:%Y-%m-%d %H:%M} UTC."))
