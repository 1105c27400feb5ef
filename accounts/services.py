"""Writes for users, teams and API keys: issuing (the raw key is returned once), revoking, membership."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, Team, TeamMembership, User

KEY_PREFIX = "amr_"
DISPLAY_PREFIX_LENGTH = 12


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).hexdigest()


def user_get_or_create(*, username: str) -> User:
    user, _ = User.objects.get_or_create(username=username)
    return user


@transaction.atomic
def api_key_issue(
    *,
    user: User,
    name: str = "default",
    expires_in_days: int | None = None,
    rate_limit_rpm: int | None = None,
    rate_limit_tpm: int | None = None,
    team: Team | None = None,
) -> tuple[ApiKey, str]:
    """Creates a key and returns it with the raw value, which is never stored and cannot be shown again."""
    raw = KEY_PREFIX + secrets.token_urlsafe(30)[:40]
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    key = ApiKey.objects.create(
        user=user,
        name=name or "default",
        prefix=raw[:DISPLAY_PREFIX_LENGTH],
        key_hash=api_key_hash(raw),
        expires_at=expires_at,
        rate_limit_rpm=rate_limit_rpm,
        rate_limit_tpm=rate_limit_tpm,
        team=team,
    )
    return key, raw


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def team_create(*, name: str, members: list[User] | None = None) -> Team:
    team = Team.objects.create(name=name)
    for user in members or []:
        team_member_add(team=team, user=user)
    return team


def team_member_add(*, team: Team, user: User) -> TeamMembership:
    membership, _ = TeamMembership.objects.get_or_create(team=team, user=user)
    return membership


def team_member_remove(*, team: Team, user: User) -> None:
    """Takes the user out of the team. Its keys they hold stop spending at once (every reservation checks the
    membership in the same statement); their other calls stop within the key lookup's cache time
    (ROUTER_KEY_CACHE_S, 3 s), as after a key's revocation."""
    TeamMembership.objects.filter(team=team, user=user).delete()


def team_rate_limits_set(*, team: Team, rpm: int | None, tpm: int | None) -> Team:
    """Requests and estimated tokens per minute for all the team's keys together (None: no team limit). Keys
    remembered by a process pick the new limits up within the key cache's time (ROUTER_KEY_CACHE_S)."""
    if (rpm is not None and rpm < 1) or (tpm is not None and tpm < 1):
        raise ValueError("a rate limit is at least 1 (None: no limit)")
    team.rate_limit_rpm, team.rate_limit_tpm = rpm, tpm
    team.save(update_fields=["rate_limit_rpm", "rate_limit_tpm"])
    return team
