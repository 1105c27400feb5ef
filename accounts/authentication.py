"""API-key authentication for /v1: a hash lookup behind a short in-process cache, for DRF and async views.

Addresses that keep presenting bad keys are slowed down: past ROUTER_AUTH_FAILURES_PER_MINUTE failures in
a minute, a bad key from that address gets 429 instead of 401 until the minute is over. Only failures are
slowed down: a valid key is served whatever its address's count, since many callers can share one address
(a NAT, an office proxy) and one of them guessing must not lock the others out. A valid key is cheap to
recognize (the key cache, else one indexed lookup) and a hash already known bad skips the lookup. The count
lives in the Django cache (Redis), so every web process sees the same one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.models import ApiKey, User
from accounts.services import api_key_hash
from config.api_errors import AuthenticationFailed, RateLimited
from config.db import run_orm
from config.middleware import client_ip_var

logger = logging.getLogger(__name__)
LAST_USED_RESOLUTION = timedelta(minutes=1)
_CACHE_MAX_ENTRIES = 10_000
FAILURE_WINDOW_S = 60
INVALID_KEY = "Invalid API key (unknown, revoked or expired)."


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: enough to serve a request without touching the user or key tables again."""

    user_id: int
    key_id: int
    team_id: int | None  # a team key: spending belongs to the team
    username: str
    is_staff: bool
    rate_limit_rpm: int | None
    rate_limit_tpm: int | None
    cache_group: str
    key_prefix: str = ""  # the key's display prefix (for logs: never the key)
    team_rate_limit_rpm: int | None = None  # a team key: its team's limits, shared by every key of the team
    team_rate_limit_tpm: int | None = None


_cache: dict[str, tuple[Principal | None, float]] = {}


def key_from_headers(request: HttpRequest) -> str | None:
    """X-API-Key (also the Anthropic SDK's x-api-key: headers are case-insensitive), then Bearer."""
    key = request.headers.get("X-API-Key")
    if key:
        return key.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _lookup(key_hash: str) -> Principal | None:
    now = timezone.now()
    key = (
        ApiKey.objects.select_related("user", "team")
        .filter(key_hash=key_hash, revoked_at__isnull=True, user__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        # A team key works only while its holder is a member (the reservation checks again, at once).
        .filter(Q(team__isnull=True) | Q(team__memberships__user_id=F("user_id")))
        .first()
    )
    if key is None:
        return None
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return Principal(
        user_id=key.user_id,
        key_id=key.pk,
        team_id=key.team_id,
        username=key.user.username,
        is_staff=key.user.is_staff,
        rate_limit_rpm=key.rate_limit_rpm,
        rate_limit_tpm=key.rate_limit_tpm,
        cache_group=key.user.cache_group,
        key_prefix=key.prefix,
        team_rate_limit_rpm=key.team.rate_limit_rpm if key.team is not None else None,
        team_rate_limit_tpm=key.team.rate_limit_tpm if key.team is not None else None,
    )


def _cached(key_hash: str) -> tuple[bool, Principal | None]:
    entry = _cache.get(key_hash)
    if entry is not None and entry[1] > time.monotonic():
        return True, entry[0]
    return False, None


def _remember(key_hash: str, principal: Principal | None) -> None:
    ttl = settings.ROUTER_KEY_CACHE_S
    if ttl <= 0:
        return
    if len(_cache) >= _CACHE_MAX_ENTRIES:
        _cache.clear()
    _cache[key_hash] = (principal, time.monotonic() + ttl)


def _failures_key(client_ip: str, window: int) -> str:
    return f"router:auth-failures:{client_ip}:{window}"


def _count_failure(client_ip: str | None) -> None:
    """Counts a failed attempt; past the address's limit for this minute, 429 with Retry-After instead of 401.

    The increment is the check, so concurrent failures in many processes never slip past the limit. A cache
    that is down slows nobody down.
    """
    limit = settings.ROUTER_AUTH_FAILURES_PER_MINUTE
    if not limit or not client_ip:
        return
    now = time.time()
    key = _failures_key(client_ip, int(now // FAILURE_WINDOW_S))
    try:
        cache.add(key, 0, timeout=FAILURE_WINDOW_S * 2)
        failures = cache.incr(key)
    except Exception:  # noqa: BLE001 - the cache (Redis) unreachable: keys are still checked, just not counted
        logger.warning("failed-key counter unavailable; not slowing down")
        return
    if failures > limit:
        retry_after = int(FAILURE_WINDOW_S - now % FAILURE_WINDOW_S) + 1
        raise RateLimited(
            f"Too many requests with an invalid API key from this address; retry in {retry_after} s.",
            code="too_many_failed_auth",
            headers={"Retry-After": str(retry_after)},
        )


def principal_for_key(raw_key: str | None, *, client_ip: str | None = None) -> Principal:
    """Raises AuthenticationFailed for a missing, unknown, revoked or expired key or an inactive user, or
    RateLimited (429) instead when the address has had too many such failures this minute. A valid key is
    never refused here, whatever its address's failures.

    `client_ip` defaults to the address of the request being served (see config.middleware).
    """
    if not raw_key:
        raise AuthenticationFailed(
            "Missing API key. Send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'."
        )
    key_hash = api_key_hash(raw_key)
    hit, principal = _cached(key_hash)
    if not hit:  # a hash remembered as bad is not looked up again
        principal = _lookup(key_hash)
        _remember(key_hash, principal)
    if principal is not None:
        return principal
    _count_failure(client_ip or client_ip_var.get())
    raise AuthenticationFailed(INVALID_KEY)


async def aprincipal_for_key(raw_key: str | None, *, client_ip: str | None = None) -> Principal:
    """principal_for_key for async views: a remembered good key costs no thread hop, anything else does."""
    if raw_key:
        _, principal = _cached(api_key_hash(raw_key))
        if principal is not None:
            return principal
    # In a worker thread that hands its connection back at once (config.db.run_orm): thread-sensitive under
    # ASGI would keep the request's connection until it ends, and a burst of requests would hold the pool.
    return await run_orm(principal_for_key, raw_key, client_ip=client_ip or client_ip_var.get())


def forget_cached_keys() -> None:
    _cache.clear()


class ApiKeyAuthentication(BaseAuthentication):
    """DRF authentication: request.user is the User, request.auth the Principal."""

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        raw_key = key_from_headers(request._request)
        if raw_key is None:
            return None  # IsAuthenticated then answers 401 in the envelope
        principal = principal_for_key(raw_key, client_ip=request.META.get("REMOTE_ADDR"))
        user = User(pk=principal.user_id, username=principal.username, is_staff=principal.is_staff)
        return user, principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
