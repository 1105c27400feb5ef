"""Dashboard API keys page: a user's keys, issuing and revoking them, and a key's spending limit."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.services import api_key_issue, api_key_revoke
from analytics.forms import ApiKeyCreateForm, KeyLimitForm
from analytics.selectors import api_key_get, key_rows, team_choices, team_of_member
from analytics.templatetags.dashboard_format import usd_exact
from analytics.views import _partial, _render, _uid
from budgets.limits import budget_window_set
from config.api_errors import ApiError


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
