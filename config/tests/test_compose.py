"""`docker compose up` with nothing set: a generated secret kept in the state volume, demo mode, and a migrate
service that the app services wait for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "DEEPSEEK_API_KEY")


def _entrypoint(state: Path, **env: str) -> dict[str, str]:
    unset = {*PROVIDER_KEYS, "SECRET_KEY", "ROUTER_DEMO", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    shown = subprocess.run(
        [
            str(ROOT / "bin" / "docker-entrypoint"),
            sys.executable,
            "-c",
            "import json, os; print(json.dumps(dict(os.environ)))",
        ],
        env={
            **clean,
            "ROUTER_STATE_DIR": str(state),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    return json.loads(shown.stdout)


def test_with_nothing_set_a_secret_is_generated_once_and_demo_mode_is_on(tmp_path):
    first = _entrypoint(tmp_path)
    assert len(first["SECRET_KEY"]) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert _entrypoint(tmp_path)["SECRET_KEY"] == first["SECRET_KEY"]  # every service and restart: the same
    assert first["ROUTER_DEMO"] == "true"
    assert first["OPENAI_BASE_URL"] == "http://fake-upstream:9100/v1"
    assert first["ANTHROPIC_BASE_URL"] == first["GEMINI_BASE_URL"] == "http://fake-upstream:9100"


def test_a_provider_key_or_a_secret_set_by_the_operator_wins(tmp_path):
    shown = _entrypoint(tmp_path, SECRET_KEY="operator-secret", OPENAI_API_KEY="sk-real")
    assert shown["SECRET_KEY"] == "operator-secret" and not (tmp_path / "secret_key").exists()
    assert shown["ROUTER_DEMO"] == "false"
    assert shown.get("OPENAI_BASE_URL") != "http://fake-upstream:9100/v1"


def test_the_app_services_wait_for_migrate_and_nothing_is_required():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["entrypoint"] == ["bin/docker-entrypoint"]
    assert "migrate" not in services["migrate"]["depends_on"]
    assert "demo_setup" in " ".join(services["migrate"]["command"])
    assert "fake-upstream" in services
    # No variable that must be set before `docker compose up` (it failed without SECRET_KEY).
    assert ":?" not in (ROOT / "docker-compose.yml").read_text()


def test_several_web_workers_get_an_empty_metrics_directory_of_their_own_at_each_start(tmp_path):
    state, tmp = tmp_path / "state", tmp_path / "tmp"
    tmp.mkdir()
    assert "PROMETHEUS_MULTIPROC_DIR" not in _entrypoint(state)  # one worker: its own registry, as ever
    first = Path(_entrypoint(state, WEB_CONCURRENCY="3", TMPDIR=str(tmp))["PROMETHEUS_MULTIPROC_DIR"])
    (first / "counter_1.db").touch()
    second = Path(_entrypoint(state, WEB_CONCURRENCY="3", TMPDIR=str(tmp))["PROMETHEUS_MULTIPROC_DIR"])
    assert first.parent == second.parent == tmp and first != second  # never on the shared state volume
    assert list(second.iterdir()) == []


def test_a_metrics_directory_set_by_the_operator_is_emptied_at_start(tmp_path):
    chosen = tmp_path / "metrics"
    chosen.mkdir()
    (chosen / "counter_1.db").touch()
    shown = _entrypoint(tmp_path / "state", PROMETHEUS_MULTIPROC_DIR=str(chosen))
    assert shown["PROMETHEUS_MULTIPROC_DIR"] == str(chosen) and list(chosen.iterdir()) == []
