"""Logs: every line once, as JSON (make run printed Django's warnings twice, once as plain text)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_with_debug_on_each_warning_is_one_json_line():
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').warning('Not Found: /nowhere'); "
        "logging.getLogger('routing.pipeline').warning('cooldown opened')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "true",
        "LOG_LEVEL": "INFO",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert [json.loads(line)["message"] for line in lines] == ["Not Found: /nowhere", "cooldown opened"]
