"""Top-level routes: /v1 API, operations, docs, admin and the dashboard."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from config import ops

urlpatterns = [
    path("v1/", include("config.api_urls")),
    path("health", ops.health, name="health"),
    path("ready", ops.ready, name="ready"),
    path("metrics", ops.metrics, name="metrics"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
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
