"""A URLconf for config/tests/test_asgi_handler.py: the door's path routed to another view."""

from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("v1/chat/completions", lambda request: HttpResponse(), name="other-completions")]
