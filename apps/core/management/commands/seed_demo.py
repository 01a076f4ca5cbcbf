"""`python manage.py seed_demo`: load the demo data of every app (idempotent; see apps.core.seeding)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.core.seeding import seed_all, seeds


class Command(BaseCommand):
    help = "Create or update the demo data of every app (templates, intents, demo tables, …). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--only", action="append", help="Run only seeds whose name contains this.")
        parser.add_argument("--list", action="store_true", help="List the registered seeds and exit.")

    def handle(self, *args, **options):
        if options["list"]:
            for name, _fn in seeds():
                self.stdout.write(name)
            return
        for name, summary in seed_all(only=options.get("only")):
            self.stdout.write(f"seeded {name}" + (f": {summary}" if summary else ""))
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
