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
    path("alerts/<int:alert_id>/dismiss/", views.budget_alert_dismiss, name="dashboard-alert-dismiss"),
    path("teams/", views.teams, name="dashboard-teams"),
    path("teams/<int:team_id>/", views.team_detail, name="dashboard-team"),
    path("teams/<int:team_id>/members/", views.team_member_add_view, name="dashboard-team-member-add"),
    path(
        "teams/<int:team_id>/members/<int:user_id>/remove/",
        views.team_member_remove_view,
        name="dashboard-team-member-remove",
    ),
    path("teams/<int:team_id>/windows/", views.team_window, name="dashboard-team-window"),
    path("teams/<int:team_id>/limits/", views.team_limits, name="dashboard-team-limits"),
    path("teams/<int:team_id>/webhook/", views.team_webhook_view, name="dashboard-team-webhook"),
]
