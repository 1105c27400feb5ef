"""A lazy view is built from its class on the first request, once, and answers as the class's own view would."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.views import View

from config import lazy_views
from config.lazy_views import lazy_view


class Hello(View):
    greeting = "hello"

    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return HttpResponse(f"{self.greeting} {kwargs.get('name', '')}".strip())


def test_the_class_is_imported_on_the_first_request_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []
    real = lazy_views.import_string

    def spy(dotted: str) -> object:
        imported.append(dotted)
        return real(dotted)

    monkeypatch.setattr(lazy_views, "import_string", spy)
    view = lazy_view(f"{__name__}.Hello", greeting="bonjour")
    assert imported == []
    request = RequestFactory().get("/hello")
    assert view(request, name="Ada").content == b"bonjour Ada"
    assert view(request).content == b"bonjour"
    assert imported == [f"{__name__}.Hello"]
    assert view.__name__ == "Hello" and getattr(view, "csrf_exempt", False) is True
