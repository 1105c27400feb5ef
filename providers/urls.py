"""/v1 routes of the catalog (token and cost estimation)."""

urlpatterns: list = []
