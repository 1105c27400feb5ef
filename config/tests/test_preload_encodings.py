"""Each web process builds its tokenizers as it starts, before Django loads the apps (ROUTER_PRELOAD_ENCODINGS):
then the parse's transient copy is freed before the modules that stay are imported, and adds nothing to the peak."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.tests.fresh_process import run_json
from providers.token_encodings import encodings_preload

# Records, for each encoding built, whether Django's apps were loaded yet; then starts the ASGI module as uvicorn does.
SPY = """
import json
import providers.token_encodings as encodings
built = []
real = encodings.get_encoding
def spy(name):
    from django.apps import apps
    built.append([name, apps.ready])
    return real(name)
encodings.get_encoding = spy
import config.asgi
print(json.dumps({"built": built}))
"""


def start(preload: str | None) -> dict[str, object]:
    return run_json(SPY, {"ROUTER_PRELOAD_ENCODINGS": preload})


def test_the_default_builds_o200k_before_the_apps_load() -> None:
    started = start(None)
    assert started["built"] == [["o200k_base", False]]


def test_none_builds_nothing_at_start() -> None:
    assert start("none")["built"] == []


def test_both_can_be_built_at_start() -> None:
    assert start("cl100k_base,o200k_base")["built"] == [["cl100k_base", False], ["o200k_base", False]]


def test_an_unknown_encoding_stops_start_up() -> None:
    with pytest.raises(
        ImproperlyConfigured, match="Unknown tokenizer encoding 'p50k'; known: cl100k_base, o200k_base"
    ):
        encodings_preload(["p50k"])
