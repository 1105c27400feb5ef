"""Any path under /v1 that no view serves is a 404 in the envelope, with DEBUG on (make run) as well as off."""

import pytest


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/v1/nonexistent"), ("post", "/v1/chat/completions/"), ("get", "/v1/analytics/nope/deeper")],
)
def test_an_unknown_v1_path_is_a_404_in_the_envelope(client, settings, debug, method, path):
    settings.DEBUG = debug
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "unknown_endpoint"


def test_a_known_model_answers_and_an_unknown_one_is_a_404_in_the_envelope(alice_api, catalog):
    assert alice_api.get("/v1/models/gpt-4o-mini").json()["id"] == "gpt-4o-mini"
    missing = alice_api.get("/v1/models/gpt-9")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
