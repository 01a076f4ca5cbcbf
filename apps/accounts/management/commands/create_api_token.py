from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import API_GROUPS, api_token_create
from apps.core.exceptions import NotFoundError


class Command(BaseCommand):
    help = "Print the API token of a user (created if missing), optionally adding the user to an API group."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--group", choices=API_GROUPS, help="Add the user to this group.")
        parser.add_argument("--create-user", action="store_true", help="Create the user if it does not exist.")

    def handle(self, *args, username, group, create_user, **options):
        try:
            token = api_token_create(username=username, group=group, create_user=create_user)
        except NotFoundError as exc:
            raise CommandError(f"{exc.message} (pass --create-user to create it)") from exc
        self.stdout.write(token.key)
