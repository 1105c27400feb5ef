"""Enqueues the fan-out tasks by name, so the services that queue work never import the tasks that run it."""

from __future__ import annotations

import functools

from celery import current_app, group
from celery.canvas import Signature

COMPARISON_MODEL_RUN = "routing.tasks.comparison_model_run_task"
BATCH_ITEM_RUN = "routing.tasks.batch_item_run_task"


def runs_inline() -> bool:
    """Embedded mode (no broker): tasks run in the calling process."""
    return bool(current_app.conf.task_always_eager)


@functools.cache
def _register_tasks() -> None:
    # A web process never imports the tasks modules; in embedded mode a signature must find its task here.
    current_app.loader.import_default_modules()


def _signature(name: str, args: tuple[object, ...]) -> Signature:
    _register_tasks()
    return current_app.signature(name, args=args)


def task_send(name: str, *args: object) -> None:
    _signature(name, args).apply_async()


def tasks_send_together(name: str, arg_lists: list[tuple[object, ...]]) -> None:
    group(_signature(name, args) for args in arg_lists).apply_async()
