"""Template context for every dashboard page: the budget alerts of this period the user hasn't dismissed."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from analytics.selectors import budget_alerts_shown


def budget_alerts(request: HttpRequest) -> dict[str, Any]:
    """Lazy: read only by a page that shows the banner (base.html), so the admin and partials pay nothing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"budget_alerts": SimpleLazyObject(lambda: budget_alerts_shown(user_id=user.pk, request=request))}
