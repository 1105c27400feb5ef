"""Whose request-log rows a reader sees, once: a WHERE that holds on the log and on the rollups alike (both carry
the user and the API key, and a key's team is the key's)."""

from __future__ import annotations

from django.db.models import Q

from accounts.models import ApiKey


def rows_personal(*, user_id: int) -> Q:
    """The user's own spending: their requests with a personal key or without one (not their team keys')."""
    return Q(user_id=user_id, api_key__team__isnull=True)


def rows_of_team(*, team_id: int) -> Q:
    """Every request made with the team's keys, whoever of its members made it."""
    return Q(api_key__team_id=team_id)


def rows_visible_to(*, user_id: int) -> Q:
    """What a user may read: their personal rows, and the rows of the team keys of the teams they are a member
    of now. The membership is a subquery of the same statement, so a member who leaves a team stops seeing
    its rows (their own made with its keys included) at once."""
    team_keys = ApiKey.objects.filter(team__memberships__user_id=user_id).values("pk")
    return rows_personal(user_id=user_id) | Q(api_key_id__in=team_keys)


def rows_of_user(*, user_id: int) -> Q:
    """Every request one user made (staff's user filter)."""
    return Q(user_id=user_id)
