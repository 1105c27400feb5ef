"""`make run`'s set-up: seed the catalog, create the demo user with a fresh key and an admin login."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import User
from accounts.services import api_key_issue, user_get_or_create
from providers.services import catalog_seed


class Command(BaseCommand):
    help = "Seed the catalog and print a working demo API key and an admin login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8001)

    def handle(self, *args: Any, **options: Any) -> None:
        catalog_seed()
        demo = user_get_or_create(username="demo")
        _, raw = api_key_issue(user=demo, name="make run")
        admin, _ = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        password = secrets.token_urlsafe(12)
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        base = f"http://127.0.0.1:{options['port']}"
        self.stdout.write(
            f"""
  AI Model Router is starting on {base}
  Demo API key (user 'demo'):  {raw}
  Admin / dashboard login:     admin / {password}   ({base}/admin/, {base}/dashboard/)
  API docs:                    {base}/docs

  Try it:
    curl -s {base}/v1/chat/completions -H "Authorization: Bearer {raw}" \\
      -H "Content-Type: application/json" \\
      -d '{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "Hello!"}}]}}'
"""
        )
