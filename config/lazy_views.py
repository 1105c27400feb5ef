"""A class-based view imported on its first request rather than with the URLconf."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt


def lazy_view(dotted: str, **initkwargs: Any) -> Callable[..., HttpResponse]:
    """`import_string(dotted).as_view(**initkwargs)`, made when the route is first requested (sync views only)."""
    built: list[Callable[..., HttpResponse]] = []

    @csrf_exempt  # as DRF's as_view() marks its views; the real view applies its own checks
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not built:
            built.append(import_string(dotted).as_view(**initkwargs))
        return built[0](request, *args, **kwargs)

    view.__name__ = dotted.rsplit(".", 1)[-1]
    return view
