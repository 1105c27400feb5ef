"""Project wiring: settings, URLs, ASGI/WSGI entry points and the Celery app.

The Celery app is made on first use (`config.celery_app`, `config.celery.app`): a web process that queues no
task never imports Celery (179 modules, ~8 MiB). `celery -A config` finds it as `config.celery`.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from config.celery import app

        return app
    raise AttributeError(f"module 'config' has no attribute {name!r}")
