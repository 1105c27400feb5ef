"""Fan-out tasks are enqueued by name: the names resolve to the registered tasks, inline in embedded mode."""

import os
import subprocess
import sys
from pathlib import Path

from routing.services import dispatch

ROOT = Path(__file__).resolve().parents[2]


def test_every_dispatched_name_is_a_registered_task():
    dispatch._register_tasks()
    for name in (dispatch.COMPARISON_MODEL_RUN, dispatch.BATCH_ITEM_RUN):
        assert dispatch.celery_app().tasks[name].name == name


def test_in_embedded_mode_a_sent_task_runs_in_the_calling_process(monkeypatch):
    ran: list[int] = []
    dispatch._register_tasks()
    task = dispatch.celery_app().tasks[dispatch.BATCH_ITEM_RUN]
    monkeypatch.setattr(task, "run", lambda item_id: ran.append(item_id))
    eager = dispatch.celery_app().conf.task_always_eager
    dispatch.celery_app().conf.task_always_eager = True
    try:
        assert dispatch.runs_inline()
        dispatch.task_send(dispatch.BATCH_ITEM_RUN, 41)
        dispatch.tasks_send_together(dispatch.BATCH_ITEM_RUN, [(42,), (43,)])
    finally:
        dispatch.celery_app().conf.task_always_eager = eager
    assert ran == [41, 42, 43]


def test_a_web_process_loads_celery_only_to_send_a_task():
    """The URLconf and every view imported, as a web worker starts: Celery (179 modules, ~8 MiB) is not."""
    probe = (
        "import sys; from config.asgi import settle_heap; settle_heap();"
        "loaded = 'celery' in sys.modules;"
        "from routing.services import dispatch; dispatch.runs_inline();"
        "print(loaded, 'celery' in sys.modules, dispatch.celery_app().main)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "ROUTER_PRELOAD_ENCODINGS": "none"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "True", "router"]
