"""Dashboard pages: each view renders its whole page, or for an HTMX request just the fragment that changed."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from analytics.compare import compare_model_choices, comparison_prompt, comparison_view
from analytics.filters import RequestFilter, shared_filters
from analytics.forms import BudgetWindowForm, CompareForm, OverviewFilterForm
from analytics.request_pages import request_page
from analytics.selectors import (
    DISMISSED_ALERTS,
    DISMISSED_ALERTS_MAX,
    budget_alert_concerns,
    budget_page_get,
    key_choices,
    model_list_with_prices,
    overview_get,
    personal_key_choices,
    request_cost_breakdown,
    request_filter_choices,
    request_get,
    request_list,
    team_choices,
    user_by_username,
    user_choices,
    user_has_teams,
)
from analytics.templatetags.dashboard_format import usd_exact
from analytics.visibility import rows_of_user, rows_visible_to
from budgets.limits import budget_window_set
from config.api_errors import ApiError

PERIODS = (7, 30, 90)
PER_PAGE = 20
MODEL_SORTS = {"provider": "Provider", "model": "Model", "input": "Input price", "output": "Output price",
               "context": "Context"}  # fmt: skip


@dataclass(frozen=True)
class Scope:
    """Whose data a page shows: what a user may see (their own and their teams' keys'), or for staff one
    user's (user_id) or, with user_id None, everyone's."""

    user_id: int | None
    username: str
    usernames: list[str] | None  # the staff user filter's choices; None for everyone else
    rows: Q  # the request-log rows shown (analytics.visibility)
    show_users: bool  # rows of more than one user can appear: a User column

    @property
    def staff_pick(self) -> str:
        """The staff user filter's choice, for links that keep it ("" otherwise)."""
        return self.username if self.usernames is not None else ""


def _scope(request: HttpRequest) -> Scope:
    if not request.user.is_staff:
        uid = _uid(request)
        return Scope(
            user_id=uid,
            username=request.user.get_username(),
            usernames=None,
            rows=rows_visible_to(user_id=uid),
            show_users=user_has_teams(user_id=uid),
        )
    usernames = list(user_choices().values_list("username", flat=True))
    username = request.GET.get("user", "").strip()
    if not username:
        return Scope(user_id=None, username="", usernames=usernames, rows=Q(), show_users=True)
    user = user_by_username(username=username)
    if user is None:
        raise Http404("No such user")
    return Scope(
        user_id=user.pk,
        username=username,
        usernames=usernames,
        rows=rows_of_user(user_id=user.pk),
        show_users=False,
    )


def _uid(request: HttpRequest) -> int:
    """The logged-in user's id (every view here is behind login_required)."""
    return int(request.user.pk)  # type: ignore[arg-type]


def _partial(request: HttpRequest) -> bool:
    """Boosted navigation swaps the whole body, so it gets the full page; other HTMX requests a fragment."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted  # type: ignore[union-attr]


def _render(
    request: HttpRequest, template: str, fragment: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    if _partial(request):
        # htmx 2 swaps only 2xx answers; a fragment with form errors is still the answer to show.
        return render(request, f"{template}#{fragment}", context)
    return render(request, template, context, status=status)


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = days if days in PERIODS else 30
    scope = _scope(request)
    narrow = OverviewFilterForm(
        request.GET, teams=_team_choices(request, scope), keys=_key_choices(request, scope)
    )
    where = shared_filters(narrow.cleaned_data) if narrow.is_valid() else Q()
    data = overview_get(rows=scope.rows & where, days=days, budget_user_id=scope.user_id)
    context = {
        "nav": "overview",
        "scope": scope,
        "days": days,
        "periods": PERIODS,
        "narrow": narrow,
        **data,
    }
    return _render(request, "analytics/overview.html", "body", context)


def _team_choices(request: HttpRequest, scope: Scope) -> list[tuple[int, str]]:
    return team_choices(user_id=None if request.user.is_staff else scope.user_id)


def _key_choices(request: HttpRequest, scope: Scope) -> list[tuple[int, str]]:
    return key_choices(user_id=scope.user_id, staff=bool(request.user.is_staff))


@login_required
@require_GET
def request_log(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    filters = RequestFilter(request.GET, queryset=request_list(rows=scope.rows))
    try:
        page_number = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        page_number = 1
    valid = filters.is_valid()
    page = (
        request_page(filters=filters, rows=scope.rows, page=page_number, per_page=PER_PAGE) if valid else None
    )
    context = {
        "nav": "requests",
        "scope": scope,
        "filters": filters,
        "page": page,
        "choices": {
            **request_filter_choices(),
            "teams": _team_choices(request, scope),
            "keys": _key_choices(request, scope),
        },
        "statuses": ["success", "error"],
    }
    return _render(request, "analytics/requests.html", "results", context, status=200 if page else 400)


@login_required
@require_GET
def request_detail(request: HttpRequest, request_id: str) -> HttpResponse:
    rows = Q() if request.user.is_staff else rows_visible_to(user_id=_uid(request))
    row = request_get(request_id=request_id, rows=rows)
    if row is None:
        raise Http404("No such request")
    context = {
        "nav": "requests",
        "row": row,
        "breakdown": request_cost_breakdown(row),
        "retention_days": settings.ROUTER_LOG_RETENTION_DAYS,
    }
    return _render(request, "analytics/request_detail.html", "body", context)


@login_required
@require_GET
def models_page(request: HttpRequest) -> HttpResponse:
    sort = request.GET.get("sort", "provider")
    sort = sort if sort in MODEL_SORTS else "provider"
    context = {
        "nav": "models",
        "models": model_list_with_prices(order_by=sort),
        "sort": sort,
        "sorts": MODEL_SORTS,
    }
    return _render(request, "analytics/models.html", "table", context)


@login_required
@require_http_methods(["GET", "POST"])
def compare(request: HttpRequest) -> HttpResponse:
    form = CompareForm(request.POST or None, model_choices=compare_model_choices())
    if request.method == "POST" and form.is_valid():
        from routing.services.comparisons import comparison_get, comparison_start  # the routing app runs it

        data = form.cleaned_data
        temperature = data.get("temperature")
        try:
            comparison = comparison_start(
                user_id=_uid(request),
                models=data["models"],
                messages=[{"role": "user", "content": data["prompt"]}],
                temperature=float(temperature) if temperature is not None else None,
                max_tokens=data.get("max_tokens"),
                cache_group=getattr(request.user, "cache_group", ""),
            )
        except ApiError as error:
            form.add_error(None, error.message)
        else:
            url = reverse("dashboard-compare-result", args=[comparison.pk])
            if not _partial(request):
                return HttpResponseRedirect(url, status=303)
            view = comparison_view(comparison_get(user_id=_uid(request), comparison_id=comparison.pk))
            response = render(request, "analytics/compare.html#results", {"comparison": view})
            response["HX-Push-Url"] = url
            return response
    context = {"nav": "compare", "form": form, "comparison": None}
    response = _render(request, "analytics/compare.html", "form", context, status=400 if form.errors else 200)
    if _partial(request):
        # The form posts into the results panel; errors belong in the form itself.
        response["HX-Retarget"] = "#compare-form"
        response["HX-Reswap"] = "outerHTML"
    return response


@login_required
@require_GET
def compare_result(request: HttpRequest, comparison_id: str) -> HttpResponse:
    from routing.services.comparisons import comparison_get  # the routing app runs it

    try:
        data = comparison_get(user_id=_uid(request), comparison_id=comparison_id)
    except (ApiError, ObjectDoesNotExist) as error:
        raise Http404("No such comparison") from error
    view = comparison_view(data)
    form = CompareForm(
        initial={"models": view.models, "prompt": comparison_prompt(comparison_id=comparison_id)},
        model_choices=compare_model_choices(),
    )
    context = {"nav": "compare", "form": form, "comparison": view}
    return _render(request, "analytics/compare.html", "results", context)


@login_required
@require_http_methods(["GET", "POST"])
def budget(request: HttpRequest) -> HttpResponse:
    uid = _uid(request)
    keys = personal_key_choices(user_id=uid)
    form = BudgetWindowForm(request.POST or None, keys=keys)
    notice = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        limit: Decimal | None = None if data["remove"] else data["limit_usd"]
        key_id = form.api_key_id  # one of the user's own personal keys: the form offers no other
        try:
            budget_window_set(
                user_id=uid,
                api_key_id=key_id,
                scope="key" if key_id else "user",
                period=data["period"],
                limit_usd=limit,
            )
        except ApiError as error:
            form.add_error("limit_usd", error.message)
        else:
            whose = f"Key “{dict(keys)[key_id]}”: its" if key_id else "Your"
            notice = f"{whose} {data['period']} limit is " + (
                "removed." if limit is None else f"now {usd_exact(limit)}."
            )
            if not _partial(request):
                messages.success(request, notice)
                return HttpResponseRedirect(reverse("dashboard-budget"), status=303)
            form = BudgetWindowForm(keys=keys)
    page = budget_page_get(user_id=uid)
    if not form.is_bound:
        own = page.primary.own_limit if page.primary else None
        form = BudgetWindowForm(initial={"target": "user", "period": "monthly", "limit_usd": own}, keys=keys)
    context = {"nav": "budget", "page": page, "form": form, "notice": notice}
    return _render(request, "analytics/budget.html", "body", context, status=400 if form.errors else 200)


# --- the budget alert banner (base.html, analytics.context_processors)


@login_required
@require_POST
def budget_alert_dismiss(request: HttpRequest, alert_id: int) -> HttpResponse:
    """Closes one of the user's alerts for this session; the alert is its period's, so it won't come back
    before the window resets (a new period's alert is a new one)."""
    if not budget_alert_concerns(user_id=_uid(request), alert_id=alert_id):
        raise Http404("No such alert")
    dismissed = [pk for pk in request.session.get(DISMISSED_ALERTS, []) if pk != alert_id]
    request.session[DISMISSED_ALERTS] = [*dismissed, alert_id][-DISMISSED_ALERTS_MAX:]
    if _partial(request):
        return HttpResponse("")  # the banner line is swapped for nothing
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("dashboard-overview")
    return HttpResponseRedirect(back, status=303)
