"""Dashboard routes (session auth; see analytics.views, analytics.key_views, analytics.team_views)."""

from django.urls import path

from analytics import key_views, team_views, views

urlpatterns = [
    path("", views.overview, name="dashboard-overview"),
    path("requests/", views.request_log, name="dashboard-requests"),
    path("requests/<str:request_id>/", views.request_detail, name="dashboard-request"),
    path("models/", views.models_page, name="dashboard-models"),
    path("compare/", views.compare, name="dashboard-compare"),
    path("compare/<str:comparison_id>/", views.compare_result, name="dashboard-compare-result"),
    path("budget/", views.budget, name="dashboard-budget"),
    path("keys/", key_views.keys, name="dashboard-keys"),
    path("keys/<int:key_id>/revoke/", key_views.key_revoke, name="dashboard-key-revoke"),
    path("keys/<int:key_id>/limit/", key_views.key_limit, name="dashboard-key-limit"),
    path("alerts/<int:alert_id>/dismiss/", views.budget_alert_dismiss, name="dashboard-alert-dismiss"),
    path("teams/", team_views.teams, name="dashboard-teams"),
    path("teams/<int:team_id>/", team_views.team_detail, name="dashboard-team"),
    path("teams/<int:team_id>/members/", team_views.team_member_add_view, name="dashboard-team-member-add"),
    path(
        "teams/<int:team_id>/members/<int:user_id>/remove/",
        team_views.team_member_remove_view,
        name="dashboard-team-member-remove",
    ),
    path("teams/<int:team_id>/windows/", team_views.team_window, name="dashboard-team-window"),
    path("teams/<int:team_id>/limits/", team_views.team_limits, name="dashboard-team-limits"),
    path("teams/<int:team_id>/webhook/", team_views.team_webhook_view, name="dashboard-team-webhook"),
]
