"""Enqueues the fan-out tasks by name, so the services that queue work never import the tasks that run it."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from config.api_errors import ServiceUnavailable
from config.circuit import Circuit
from config.redis_clients import REDIS_ERRORS

if TYPE_CHECKING:
    from celery import Celery
    from celery.canvas import Signature

logger = logging.getLogger(__name__)
# A broker that is down or hung costs one publish timeout, then sends fail at once until a probe gets through.
broker_circuit = Circuit("Celery broker", open_s=3.0)


class BrokerUnavailable(ServiceUnavailable):
    """The task could not be queued: nothing was sent."""

    code = "queue_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The task queue is unavailable; try again shortly",
            code="queue_unavailable",
            headers={"Retry-After": "5"},
        )


COMPARISON_MODEL_RUN = "routing.tasks.comparison_model_run_task"
BATCH_ITEM_RUN = "routing.tasks.batch_item_run_task"


def celery_app() -> Celery:
    """The project's Celery app, imported on the first task sent: a web process that sends none never loads
    Celery (config/__init__.py)."""
    from config.celery import app

    return app


@functools.cache
def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError as BrokerOperationalError

    return (BrokerOperationalError, *REDIS_ERRORS)


def runs_inline() -> bool:
    """Embedded mode (no broker): tasks run in the calling process."""
    return bool(celery_app().conf.task_always_eager)


@functools.cache
def _register_tasks() -> None:
    # A web process never imports the tasks modules; in embedded mode a signature must find its task here.
    celery_app().loader.import_default_modules()


def _signature(name: str, args: tuple[object, ...]) -> Signature:
    _register_tasks()
    return celery_app().signature(name, args=args)


def _send(publish: Signature) -> None:
    """Publishes, or raises BrokerUnavailable at once while the broker's circuit is open."""
    if runs_inline():
        publish.apply_async()  # embedded mode: runs here, no broker to fail
        return
    if not broker_circuit.allow():
        raise BrokerUnavailable
    try:
        publish.apply_async()
    except _broker_errors() as exc:
        broker_circuit.failed()
        logger.warning("could not queue %s: %s", publish, exc)
        raise BrokerUnavailable from exc
    broker_circuit.succeeded()


def task_send(name: str, *args: object) -> None:
    _send(_signature(name, args))


def tasks_send_together(name: str, arg_lists: list[tuple[object, ...]]) -> None:
    from celery import group

    _send(group(_signature(name, args) for args in arg_lists))
