"""docker-compose.yml can scale the web tier: it parses, its commands exist, and web binds no host port."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_compose_file_has_the_services_the_design_needs():
    services = _compose()["services"]
    assert {"postgres", "redis", "web", "worker", "proxy"} <= set(services)


def test_every_app_service_command_names_a_real_entry_point():
    services = _compose()["services"]
    commands = {name: services[name]["command"] for name in ("web", "worker", "beat", "migrate")}
    texts = {name: " ".join(c) if isinstance(c, list) else c for name, c in commands.items()}
    assert "config.asgi:application" in texts["web"] and (ROOT / "config" / "asgi.py").exists()
    for name in ("worker", "beat"):
        assert texts[name].startswith("celery -A config") and (ROOT / "config" / "celery.py").exists()
    for command_name in ("migrate", "seed_catalog"):
        assert f"manage.py {command_name}" in texts["migrate"]
    assert list(ROOT.glob("*/management/commands/seed_catalog.py"))


def test_the_web_service_publishes_no_fixed_host_port_so_it_can_scale():
    services = _compose()["services"]
    assert "ports" not in services["web"]
    assert services["proxy"]["ports"], "the proxy is the one published entry"
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server web:8001" in nginx


def test_the_dockerfile_installs_the_pinned_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements/base.txt" in dockerfile
    assert "config.asgi:application" in dockerfile
