"""/v1/budget routes."""

urlpatterns: list = []
