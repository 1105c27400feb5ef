"""Keeping provider keys out of what a vendor sends back: every configured key is replaced before text is kept."""

from __future__ import annotations

from collections.abc import Iterable

MAX_MESSAGE_CHARS = 1000

# Every configured provider key (set by the catalog when it loads): a vendor's error body can echo any of
# them, e.g. a proxy in front of one vendor that forwards another's key, and none may reach a client or a row.
# Longest first, so a key that contains another is replaced whole, not around the shorter one. Shorter
# strings than this are no credential and would cut through ordinary words.
MIN_SECRET_CHARS = 8
_secrets: tuple[str, ...] = ()


def _longest_first(keys: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(keys), key=lambda key: (-len(key), key)))


def secrets_register(keys: Iterable[str | None]) -> None:
    global _secrets
    _secrets = _longest_first(key for key in keys if key and len(key) >= MIN_SECRET_CHARS)


def redact(text: str, api_key: str | None = None, *, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Text a provider sent, with every configured key (and `api_key`) replaced, then cut to `limit`.

    Replaced before the cut: a key cut in two by the limit would no longer match, and its start would leak.
    """
    secrets = _secrets if not api_key or api_key in _secrets else _longest_first((api_key, *_secrets))
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text if len(text) <= limit else text[:limit] + "…"
