"""/v1 routes of the gateway."""

from django.urls import path

from routing.api import models_api

urlpatterns = [
    path("models", models_api.ModelListApi.as_view(), name="v1-models"),
]
