"""`make run`'s set-up: the catalog with today's models, the demo user's key and an admin login (kept).

The key and the password are stored (mode 0600) in ROUTER_STATE_DIR (var/, git-ignored) and printed again by
every later run: a restart never resets the admin's password (logging out open dashboard sessions) nor mints
one more key. If the stored key was revoked or the password changed in the admin, a new one replaces it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.services import api_key_hash, api_key_issue, user_get_or_create
from providers.services import catalog_import_bundled, catalog_seed

KEY_NAME = "make run"


def _state_file() -> Path:
    return Path(settings.ROUTER_STATE_DIR) / "demo-credentials.json"


def _load() -> dict[str, str]:
    try:
        data = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(state: dict[str, str]) -> None:
    path = _state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(state, handle)


def _demo_key(user: User, stored: str | None) -> str:
    """The stored key while it still works; else a new one, and the demo's older `make run` keys revoked."""
    active = ApiKey.objects.filter(user=user, name=KEY_NAME, revoked_at__isnull=True)
    if stored and active.filter(key_hash=api_key_hash(stored)).exists():
        return stored
    active.update(revoked_at=timezone.now())
    return api_key_issue(user=user, name=KEY_NAME)[1]


def _admin_password(stored: str | None) -> str:
    """The stored password while it is still the admin's; a new one only for a new or changed admin."""
    admin, _ = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
    if not (admin.is_staff and admin.is_superuser):
        admin.is_staff = admin.is_superuser = True
        admin.save(update_fields=["is_staff", "is_superuser"])
    if stored and admin.check_password(stored):
        return stored
    password = secrets.token_urlsafe(12)
    admin.set_password(password)
    admin.save(update_fields=["password"])
    return password


class Command(BaseCommand):
    help = "Seed the catalog and print a working demo API key and an admin login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8001)

    def handle(self, *args: Any, **options: Any) -> None:
        catalog_seed()
        catalog_import_bundled()  # today's models, as the bundled price map lists them
        stored = _load()
        raw = _demo_key(user_get_or_create(username="demo"), stored.get("api_key"))
        password = _admin_password(stored.get("admin_password"))
        if stored != {"api_key": raw, "admin_password": password}:
            _save({"api_key": raw, "admin_password": password})
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
