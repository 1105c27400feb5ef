"""/v1/analytics routes."""

from django.urls import path

from analytics import api

urlpatterns = [
    path("usage", api.UsageSummaryApi.as_view(), name="v1-analytics-usage"),
    path("requests", api.RequestListApi.as_view(), name="v1-analytics-requests"),
    path("requests/<str:request_id>", api.RequestDetailApi.as_view(), name="v1-analytics-request"),
    path("models", api.ModelListApi.as_view(), name="v1-analytics-models"),
]
