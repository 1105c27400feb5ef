"""Dashboard Teams pages: members see their teams, staff see and change every team."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Team
from accounts.services import team_create, team_member_add, team_member_remove, team_rate_limits_set
from analytics.forms import (
    TeamCreateForm,
    TeamMemberAddForm,
    TeamRateLimitsForm,
    TeamWebhookForm,
    TeamWindowForm,
)
from analytics.selectors import (
    team_get,
    team_list,
    team_member_get,
    team_name_taken,
    team_page_get,
    user_by_username,
)
from analytics.views import PERIODS, _partial, _render, _uid
from budgets.team_windows import team_webhook_set, team_window_set
from config.api_errors import ApiError


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
