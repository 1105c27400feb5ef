"""/v1 routes, wired by dotted path to each app's API module."""

from django.urls import include, path

urlpatterns: list = [
    path("", include("routing.api.urls")),
    path("analytics/", include("analytics.urls")),
    path("", include("budgets.urls")),
    path("", include("providers.urls")),
]
