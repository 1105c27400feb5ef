"""Prometheus multiprocess mode: several web workers each write their metrics to files, and /metrics adds them up.

The mode is on when PROMETHEUS_MULTIPROC_DIR is set. bin/docker-entrypoint sets it when WEB_CONCURRENCY > 1, to a
directory it creates empty at server start: it must be in the environment before a worker imports prometheus_client
(which picks file-backed values at import), and emptied once per server, never by a worker (one that the server
starts again would wipe the others' counts). A worker only drops its live gauges' files when it stops, at the ASGI
lifespan shutdown (config/asgi.py): uvicorn ends a worker by re-raising SIGTERM, so atexit hooks never run.
"""

from __future__ import annotations

import logging
import os

from config.env import env_optional_int

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

logger = logging.getLogger(__name__)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR_ENV) or None


def multiprocess_setup() -> None:
    """Called once by each web worker at start-up: several workers without the directory are worth a warning."""
    workers = env_optional_int("WEB_CONCURRENCY", minimum=1)
    if multiprocess_dir() is None and workers is not None and workers > 1:
        logger.warning(
            "WEB_CONCURRENCY=%d without PROMETHEUS_MULTIPROC_DIR: /metrics reports only the worker that answers it;"
            " start through bin/docker-entrypoint, which creates the directory",
            workers,
        )


def multiprocess_exit() -> None:
    """Called by a web worker that stops: the files of its 'live*' gauges go with it (its counters and histograms
    stay, part of the totals)."""
    path = multiprocess_dir()
    if path is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), path)
