"""Dashboard pages: each view renders its whole page, or for an HTMX request just the fragment that changed."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Team
from accounts.services import (
    api_key_issue,
    api_key_revoke,
    team_create,
    team_member_add,
    team_member_remove,
    team_rate_limits_set,
)
from analytics.filters import RequestFilter, shared_filters
from analytics.forms import (
    ApiKeyCreateForm,
    BudgetWindowForm,
    CompareForm,
    KeyLimitForm,
    OverviewFilterForm,
    TeamCreateForm,
    TeamMemberAddForm,
    TeamRateLimitsForm,
    TeamWebhookForm,
    TeamWindowForm,
)
from analytics.request_pages import request_page
from analytics.selectors import (
    DISMISSED_ALERTS,
    DISMISSED_ALERTS_MAX,
    api_key_get,
    budget_alert_concerns,
    budget_page_get,
    compare_model_choices,
    comparison_prompt,
    comparison_view,
    key_choices,
    key_rows,
    model_list_with_prices,
    overview_get,
    personal_key_choices,
    request_cost_breakdown,
    request_filter_choices,
    request_get,
    request_list,
    team_choices,
    team_get,
    team_list,
    team_member_get,
    team_name_taken,
    team_of_member,
    team_page_get,
    user_by_username,
    user_choices,
    user_has_teams,
)
from analytics.templatetags.dashboard_format import usd_exact
from analytics.visibility import rows_of_user, rows_visible_to
from budgets.limits import budget_window_set
from budgets.team_windows import team_webhook_set, team_window_set
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


def _keys_render(
    request: HttpRequest,
    *,
    form: ApiKeyCreateForm | None = None,
    new_key: str | None = None,
    limit_form: tuple[int, KeyLimitForm] | None = None,
    notice: str = "",
) -> HttpResponse:
    """The keys page (or its body), with the create form and, after a failed limit, that key's form."""
    teams = team_choices(user_id=_uid(request))
    context = {
        "nav": "keys",
        "rows": key_rows(user_id=_uid(request)),
        "form": form or ApiKeyCreateForm(teams=teams),
        "new_key": new_key,
        "limit_key_id": limit_form[0] if limit_form else None,
        "limit_form": limit_form[1] if limit_form else None,
        "notice": notice,
    }
    failed = bool((form and form.errors) or (limit_form and limit_form[1].errors))
    return _render(request, "analytics/keys.html", "body", context, status=400 if failed else 200)


def _keys_done(request: HttpRequest, notice: str) -> HttpResponse:
    if not _partial(request):
        messages.success(request, notice)
        return HttpResponseRedirect(reverse("dashboard-keys"), status=303)
    return _keys_render(request, notice=notice)


@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest) -> HttpResponse:
    teams = team_choices(user_id=_uid(request))  # a team key only for a team one is a member of
    form = ApiKeyCreateForm(request.POST or None, teams=teams)
    if request.method == "POST" and form.is_valid():
        team_id = form.cleaned_data.get("team")
        team = team_of_member(user_id=_uid(request), team_id=team_id) if team_id else None
        if team_id and team is None:  # left the team since the page was drawn
            form.add_error("team", "You are not a member of that team.")
        else:
            _, new_key = api_key_issue(
                user=request.user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data.get("expires_in_days"),
                team=team,
            )
            # The key is in this answer only, never in a redirect or a session: a GET can't show it again.
            return _keys_render(request, new_key=new_key)
    return _keys_render(request, form=form)


@login_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = api_key_get(user_id=_uid(request), key_id=key_id)
    if key is None:
        raise Http404("No such key")
    api_key_revoke(key=key)
    return _keys_done(request, f"Key “{key.name}” is revoked.")


@login_required
@require_POST
def key_limit(request: HttpRequest, key_id: int) -> HttpResponse:
    key = api_key_get(user_id=_uid(request), key_id=key_id)
    if key is None:
        raise Http404("No such key")
    form = KeyLimitForm(request.POST)
    if form.is_valid() and key.status != "active":
        form.add_error(None, f"The key is {key.status}: it makes no more requests to limit.")
    if form.is_valid():
        data = form.cleaned_data
        limit: Decimal | None = None if data["remove"] else data["limit_usd"]
        try:
            budget_window_set(
                user_id=_uid(request), api_key_id=key.pk, scope="key", period=data["period"], limit_usd=limit
            )
        except ApiError as error:
            form.add_error("limit_usd", error.message)
        else:
            done = "removed" if limit is None else f"now {usd_exact(limit)}"
            return _keys_done(request, f"Key “{key.name}”: its {data['period']} limit is {done}.")
    return _keys_render(request, limit_form=(key.pk, form))


# --- teams: members see their teams, staff see and change every team


def _team_visible(request: HttpRequest, team_id: int) -> Team:
    """The team, if the reader may see it (a member; staff: any); otherwise it does not exist for them."""
    team = team_get(team_id=team_id, user_id=None if request.user.is_staff else _uid(request))
    if team is None:
        raise Http404("No such team")
    return team


def _team_for_staff(request: HttpRequest, team_id: int) -> Team:
    """A member sees the team but may not change it (403); anyone else doesn't see it (404)."""
    team = _team_visible(request, team_id)
    if not request.user.is_staff:
        raise PermissionDenied("Only staff change a team")
    return team


@login_required
@require_http_methods(["GET", "POST"])
def teams(request: HttpRequest) -> HttpResponse:
    staff = bool(request.user.is_staff)
    form = TeamCreateForm(request.POST or None)
    if request.method == "POST":
        if not staff:
            raise PermissionDenied("Only staff create a team")
        if form.is_valid():
            name = form.cleaned_data["name"].strip()
            if team_name_taken(name=name):
                form.add_error("name", "A team with this name exists already.")
            else:
                team = team_create(name=name)
                messages.success(request, f"Team “{team.name}” is created. Add its members.")
                url = reverse("dashboard-team", args=[team.pk])
                if not _partial(request):
                    return HttpResponseRedirect(url, status=303)
                response = HttpResponse(status=204)
                response["HX-Redirect"] = url
                return response
    context = {
        "nav": "teams",
        "rows": team_list(user_id=None if staff else _uid(request)),
        "form": form if staff else None,
    }
    return _render(request, "analytics/teams.html", "body", context, status=400 if form.errors else 200)


def _team_render(
    request: HttpRequest,
    team: Team,
    *,
    forms: dict[str, Any] | None = None,
    notice: str = "",
    secret: str | None = None,
) -> HttpResponse:
    """The team page (or its body): each staff form unbound unless it is the one that just failed."""
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = days if days in PERIODS else 30
    page = team_page_get(team=team, days=days)
    staff_forms: dict[str, Any] = {}
    if request.user.is_staff:
        staff_forms = {
            "member": TeamMemberAddForm(),
            "window": TeamWindowForm(),
            "limits": TeamRateLimitsForm(
                initial={"rate_limit_rpm": team.rate_limit_rpm, "rate_limit_tpm": team.rate_limit_tpm}
            ),
            "webhook": TeamWebhookForm(initial={"webhook_url": page.webhook.url}),
            **(forms or {}),
        }
    failed = any(form.errors for form in (forms or {}).values())
    context = {
        "nav": "teams",
        "page": page,
        "team": team,
        "days": days,
        "periods": PERIODS,
        "staff_forms": staff_forms,
        "notice": notice,
        "secret": secret,
    }
    return _render(request, "analytics/team.html", "body", context, status=400 if failed else 200)


def _team_done(request: HttpRequest, team: Team, notice: str, secret: str | None = None) -> HttpResponse:
    if not _partial(request) and secret is None:
        messages.success(request, notice)
        return HttpResponseRedirect(reverse("dashboard-team", args=[team.pk]), status=303)
    # A new secret is in this answer only (it is shown once), so no redirect for it.
    return _team_render(request, team, notice=notice, secret=secret)


@login_required
@require_GET
def team_detail(request: HttpRequest, team_id: int) -> HttpResponse:
    return _team_render(request, _team_visible(request, team_id))


@login_required
@require_POST
def team_member_add_view(request: HttpRequest, team_id: int) -> HttpResponse:
    team = _team_for_staff(request, team_id)
    form = TeamMemberAddForm(request.POST)
    if form.is_valid():
        user = user_by_username(username=form.cleaned_data["username"].strip())
        if user is None:
            form.add_error("username", "No user has this username.")
        else:
            team_member_add(team=team, user=user)
            return _team_done(request, team, f"{user.username} is a member of {team.name}.")
    return _team_render(request, team, forms={"member": form})


@login_required
@require_POST
def team_member_remove_view(request: HttpRequest, team_id: int, user_id: int) -> HttpResponse:
    team = _team_for_staff(request, team_id)
    member = team_member_get(team=team, user_id=user_id)
    if member is None:
        raise Http404("Not a member")
    team_member_remove(team=team, user=member)
    return _team_done(
        request,
        team,
        f"{member.username} is no longer in {team.name}: the team's keys they hold stop working.",
    )


@login_required
@require_POST
def team_window(request: HttpRequest, team_id: int) -> HttpResponse:
    team = _team_for_staff(request, team_id)
    form = TeamWindowForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        remove = data["remove"]
        try:
            window = team_window_set(
                team_id=team.pk,
                period=data["period"],
                own_limit_usd=None if remove else data["own_limit_usd"],
                admin_limit_usd=None if remove else data["admin_limit_usd"],
            )
        except ApiError as error:
            form.add_error(None, error.message)
        else:
            done = "set" if window is not None and not remove else "removed"
            if remove and window is not None:
                done = "cleared (requests in flight still hold money in it)"
            return _team_done(request, team, f"{team.name}'s {data['period']} window is {done}.")
    return _team_render(request, team, forms={"window": form})


@login_required
@require_POST
def team_limits(request: HttpRequest, team_id: int) -> HttpResponse:
    team = _team_for_staff(request, team_id)
    form = TeamRateLimitsForm(request.POST)
    if form.is_valid():
        team_rate_limits_set(
            team=team, rpm=form.cleaned_data["rate_limit_rpm"], tpm=form.cleaned_data["rate_limit_tpm"]
        )
        return _team_done(request, team, f"{team.name}'s rate limits are saved.")
    return _team_render(request, team, forms={"limits": form})


@login_required
@require_POST
def team_webhook_view(request: HttpRequest, team_id: int) -> HttpResponse:
    team = _team_for_staff(request, team_id)
    form = TeamWebhookForm(request.POST)
    if form.is_valid():
        url = form.cleaned_data["webhook_url"]
        try:
            secret = team_webhook_set(team_id=team.pk, url=url, new_secret=form.cleaned_data["new_secret"])
        except ApiError as error:
            form.add_error("webhook_url", error.message)
        else:
            notice = f"{team.name}'s alerts go to {url}." if url else f"{team.name}'s alert webhook is off."
            return _team_done(request, team, notice, secret=secret)
    return _team_render(request, team, forms={"webhook": form})


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
