"""A Python script run in a fresh interpreter with the test settings, answering one JSON line on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_json(script: str, env: dict[str, str | None]) -> dict[str, Any]:
    """Runs `script`; `env` sets (or, with None, unsets) variables over this process's environment."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
