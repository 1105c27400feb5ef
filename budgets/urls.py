"""/v1/budget routes."""

from django.urls import path

from budgets import api

urlpatterns = [
    path("budget", api.BudgetGetApi.as_view(), name="v1-budget"),
    path("budget/limit", api.BudgetLimitSetApi.as_view(), name="v1-budget-limit"),
    path("budget/reset", api.BudgetResetApi.as_view(), name="v1-budget-reset"),
    path("budget/windows", api.BudgetWindowSetApi.as_view(), name="v1-budget-windows"),
]
