"""Creates an API key for a user (creating the user if needed); the key alone is the last stdout line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.services import api_key_issue, user_get_or_create


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print it (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="default")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["expires_in_days"] is not None and options["expires_in_days"] < 1:
            self.stderr.write("--expires-in-days must be at least 1")
            raise SystemExit(2)
        user = user_get_or_create(username=options["username"])
        key, raw = api_key_issue(user=user, name=options["name"], expires_in_days=options["expires_in_days"])
        self.stdout.write(f"Created API key '{key.name}' ({key.prefix}…) for user {user.username}:")
        self.stdout.write(raw)
