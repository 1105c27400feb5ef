"""Top-level routes: /v1 API, operations, docs, admin and the dashboard."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from config import ops
from config.lazy_views import lazy_view

urlpatterns = [
    path("v1/", include("config.api_urls")),
    path("health", ops.health, name="health"),
    path("ready", ops.ready, name="ready"),
    path("metrics", ops.metrics, name="metrics"),
    # Imported on their first request: drf-spectacular's views bring its renderers and PyYAML (1.9 MiB) that a
    # process answering /v1 never needs.
    path("openapi.json", lazy_view("drf_spectacular.views.SpectacularJSONAPIView"), name="openapi"),
    path("docs", lazy_view("drf_spectacular.views.SpectacularSwaggerView", url_name="openapi"), name="docs"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("dashboard/", include("analytics.dashboard_urls")),
    path("", RedirectView.as_view(url="/dashboard/", permanent=False), name="home"),
    # Browsers ask for /favicon.ico whatever the page links: send them to the icon (was a 404 in every log).
    # Resolved per request: with the manifest storage of production the name is known only after collectstatic.
    path("favicon.ico", lambda request: redirect(static("favicon.svg"), permanent=True), name="favicon"),
]

# Under /v1 even a path or error no view handled answers in the error envelope (config/api_errors.py).
handler404 = "config.api_errors.not_found"
handler500 = "config.api_errors.server_error"
