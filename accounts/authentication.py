"""API-key authentication for /v1: a hash lookup behind a short in-process cache, for DRF and async views."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.models import ApiKey, User
from accounts.services import api_key_hash
from config.api_errors import AuthenticationFailed

LAST_USED_RESOLUTION = timedelta(minutes=1)
_CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: enough to serve a request without touching the user or key tables again."""

    user_id: int
    key_id: int
    username: str
    is_staff: bool
    rate_limit_rpm: int | None
    rate_limit_tpm: int | None
    cache_group: str


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
        ApiKey.objects.select_related("user")
        .filter(key_hash=key_hash, revoked_at__isnull=True, user__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if key is None:
        return None
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return Principal(
        user_id=key.user_id,
        key_id=key.pk,
        username=key.user.username,
        is_staff=key.user.is_staff,
        rate_limit_rpm=key.rate_limit_rpm,
        rate_limit_tpm=key.rate_limit_tpm,
        cache_group=key.user.cache_group,
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


def principal_for_key(raw_key: str | None) -> Principal:
    """Raises AuthenticationFailed for a missing, unknown, revoked or expired key or an inactive user."""
    if not raw_key:
        raise AuthenticationFailed(
            "Missing API key. Send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'."
        )
    key_hash = api_key_hash(raw_key)
    hit, principal = _cached(key_hash)
    if not hit:
        principal = _lookup(key_hash)
        _remember(key_hash, principal)
    if principal is None:
        raise AuthenticationFailed("Invalid API key (unknown, revoked or expired).")
    return principal


async def aprincipal_for_key(raw_key: str | None) -> Principal:
    if raw_key:
        hit, principal = _cached(api_key_hash(raw_key))
        if hit:
            if principal is None:
                raise AuthenticationFailed("Invalid API key (unknown, revoked or expired).")
            return principal
    return await sync_to_async(_principal_for_key_released, thread_sensitive=False)(raw_key)


def _principal_for_key_released(raw_key: str | None) -> Principal:
    """The lookup from async code, handing its connection back to the pool at once.

    Thread-sensitive under ASGI would mean the request's own thread, which keeps its connection until the
    request ends: a burst of concurrent requests then holds the whole pool while each waits for another
    connection to reserve budget or log, and they all time out.
    """
    try:
        return principal_for_key(raw_key)
    finally:
        close_old_connections()


def forget_cached_keys() -> None:
    _cache.clear()


class ApiKeyAuthentication(BaseAuthentication):
    """DRF authentication: request.user is the User, request.auth the Principal."""

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        raw_key = key_from_headers(request._request)
        if raw_key is None:
            return None  # IsAuthenticated then answers 401 in the envelope
        principal = principal_for_key(raw_key)
        user = User(pk=principal.user_id, username=principal.username, is_staff=principal.is_staff)
        return user, principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
