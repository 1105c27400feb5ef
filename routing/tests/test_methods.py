"""A wrong HTTP method on a gateway endpoint is a 405 in the error envelope, with Allow."""

import pytest
from django.test import Client


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/v1/chat/completions", "POST"),
        ("put", "/v1/chat/compare", "POST"),
        ("delete", "/v1/chat/batch", "POST"),
        ("post", "/v1/chat/compare/cmp_x", "GET"),
        ("patch", "/v1/chat/batch/batch_x", "GET"),
    ],
)
def test_a_wrong_method_is_405_in_the_envelope(method, path, allowed):
    response = getattr(Client(), method)(path)
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"
