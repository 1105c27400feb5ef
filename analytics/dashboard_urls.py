"""Dashboard routes (session auth; see analytics.views)."""

from django.urls import path

from analytics import views

urlpatterns = [
    path("", views.overview, name="dashboard-overview"),
    path("requests/", views.request_log, name="dashboard-requests"),
    path("requests/<str:request_id>/", views.request_detail, name="dashboard-request"),
    path("models/", views.models_page, name="dashboard-models"),
    path("compare/", views.compare, name="dashboard-compare"),
    path("compare/<str:comparison_id>/", views.compare_result, name="dashboard-compare-result"),
    path("budget/", views.budget, name="dashboard-budget"),
    path("keys/", views.keys, name="dashboard-keys"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="dashboard-key-revoke"),
    path("keys/<int:key_id>/limit/", views.key_limit, name="dashboard-key-limit"),
]
