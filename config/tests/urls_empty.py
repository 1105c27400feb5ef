"""A URLconf with no routes, for config/tests/test_asgi_handler.py."""

urlpatterns: list[object] = []
