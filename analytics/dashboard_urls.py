"""Dashboard routes (session auth)."""

urlpatterns: list = []
