"""The `make run` configuration in a temporary directory: SQLite, local-memory cache, tasks in-process.

`config.settings.local` exactly as `make run` gets it (no DATABASE_URL, REDIS_URL or CELERY_BROKER_URL: each is
set empty, which the settings read as unset, as in .env.example, so it also overrides an inherited value),
except that the SQLite file lives in the given directory instead of the project's root: a settings module
written there imports local's settings and moves only the file, so the embedded default's SQLite options
(busy timeout, IMMEDIATE transactions) stay as they are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = "embedded_settings"
# What the test settings (or a developer's shell) put in the environment and `make run` would not have.
NOT_INHERITED = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_TASK_DEFAULT_QUEUE",
    "TEST_DATABASE_NAME",
    "DJANGO_SETTINGS_MODULE",
    "ROUTER_DEMO",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "GEMINI_BASE_URL",
    "DEEPSEEK_BASE_URL",
)


class EmbeddedSite:
    """One embedded-mode installation: its settings module, SQLite file and journal in `directory`."""

    def __init__(self, directory: Path, *, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.database = directory / "db.sqlite3"
        self.journal = directory / "journal"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{SETTINGS_MODULE}.py").write_text(
            '"""config.settings.local with its SQLite file in this directory."""\n\n'
            "from config.settings.local import *  # noqa: F403\n\n"
            f'DATABASES["default"]["NAME"] = {str(self.database)!r}  # noqa: F405\n'
        )
        self.env = {
            **os.environ,
            **dict.fromkeys(NOT_INHERITED, ""),
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "PYTHONPATH": os.pathsep.join([str(directory), str(ROOT)]),
            "ROUTER_JOURNAL_DIR": str(self.journal),
            **(env or {}),
        }

    def run(self, *args: str, timeout_s: float = 120) -> str:
        """A Python command (`-m …`, `-c …`, `manage.py …`) in this installation; its stdout."""
        done = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def manage(self, *args: str) -> str:
        return self.run("manage.py", *args)

    def migrate(self) -> EmbeddedSite:
        self.manage("migrate", "--noinput")
        return self
