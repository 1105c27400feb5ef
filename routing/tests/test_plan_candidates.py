"""The plan's candidates are made once per catalog, cooldowns and latency samples, and anew when any changes."""

from __future__ import annotations

import dataclasses

import pytest

from providers.catalog import catalog_get, catalog_invalidate
from routing.pipeline.plan import _candidates

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(catalog):
    catalog_invalidate()
    yield catalog_get()
    catalog_invalidate()


def test_the_same_inputs_find_the_candidates_made(loaded) -> None:
    first = _candidates(loaded, set(), {})
    assert _candidates(loaded, set(), {}) is first
    assert [c.model_id for c in first] == [m.model_id for m in loaded.models]


def test_a_cooldown_a_latency_sample_or_a_new_catalog_makes_them_anew(loaded) -> None:
    model = loaded.models[0]
    first = _candidates(loaded, set(), {})

    cooling = _candidates(loaded, {model.provider}, {})
    assert cooling is not first
    assert all(c.in_cooldown == (c.provider == model.provider) for c in cooling)

    sampled = _candidates(loaded, {model.provider}, {model.model_id: 123.0})
    assert sampled is not cooling
    assert sampled[0].p50_latency_ms == 123.0
    assert _candidates(loaded, {model.provider}, {model.model_id: 124.0})[0].p50_latency_ms == 124.0

    renamed = dataclasses.replace(model, context_window=model.context_window + 1)
    reloaded = dataclasses.replace(
        loaded, models=(renamed, *loaded.models[1:])
    )  # what a catalog reload makes
    assert _candidates(reloaded, set(), {})[0].context_window == model.context_window + 1
    assert _candidates(loaded, set(), {})[0].context_window == model.context_window
