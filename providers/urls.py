"""/v1 routes of the catalog (token and cost estimation)."""

from django.urls import path

from providers.api import TokenEstimateApi

urlpatterns = [
    path("tokens/estimate", TokenEstimateApi.as_view(), name="v1-tokens-estimate"),
]
