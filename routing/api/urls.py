"""/v1 routes of the gateway."""

from django.urls import path

from routing.api import completions, models_api

urlpatterns = [
    path("chat/completions", completions.chat_completions, name="v1-chat-completions"),
    path("models", models_api.ModelListApi.as_view(), name="v1-models"),
]
