"""API keys: created once, stored only as SHA-256, checked per route against a scope.

A key is ``idr_<key_id>_<secret>``; the store keeps ``key_id`` (to list and revoke keys without
ever seeing them again) and the SHA-256 of the whole key. SHA-256 rather than a slow password
hash is right here because the secret is 256 random bits, not a guessable password: there is
nothing to brute-force, and every request can afford one hash.

Scopes (see ``idr_pipeline.store.tables.API_KEY_SCOPES``): ``read`` (look-ups by what the
caller names, audience counts, the segment catalog; national id and birth date masked),
``pii`` (those fields whole), ``export`` (listing identities the server picks: audience pages and
segment members), ``activate`` (activations and ``register=true``), ``admin`` (erasure, detailed
health; also satisfies every other scope).

Every route also spends from the key's rate budget (:mod:`idr_pipeline.api.limits`); a key may
carry an expiry, and its last use is recorded (at most once a minute, off the request path).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from idr_pipeline.api.keys import ApiKey, KeyCache
from idr_pipeline.api.state import AppState, get_state
from idr_pipeline.core.clock import naive_utc_now
from idr_pipeline.store import IdentityStore
from idr_pipeline.store.tables import API_KEY_SCOPES

KEY_PREFIX = "idr_"
HEADER = "X-API-Key"


#: Declared in the OpenAPI document, so clients and fuzzers find how to authenticate.
API_KEY_HEADER = APIKeyHeader(
    name=HEADER, auto_error=False, scheme_name="ApiKeyHeader", description="An API key (idr_...)."
)
BEARER = HTTPBearer(auto_error=False, scheme_name="Bearer", description="The same key as a bearer token.")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(
    store: IdentityStore, name: str, scopes: Iterable[str], expires_in_days: float | None = None
) -> tuple[str, str]:
    """(key_id, key): the key is returned once and never stored in clear; it stops working
    ``expires_in_days`` from now when given."""
    chosen = sorted(set(scopes))
    unknown = set(chosen) - API_KEY_SCOPES
    if not chosen or unknown:
        raise ValueError(f"scopes must be a non-empty subset of {sorted(API_KEY_SCOPES)}; got {chosen}")
    if expires_in_days is not None and expires_in_days <= 0:
        raise ValueError("expires_in_days must be positive")
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    expires_at = naive_utc_now() + timedelta(days=expires_in_days) if expires_in_days is not None else None
    store.upsert(
        "api_keys",
        [
            {
                "key_id": key_id,
                "key_sha256": hash_key(key),
                "name": name,
                "scopes": chosen,
                "expires_at": expires_at,
            }
        ],
    )
    return key_id, key


def revoke_key(store: IdentityStore, key_id: str) -> bool:
    """Mark a key revoked (the row stays for audit); False when there is no such active key."""
    rows = store.select_rows("api_keys", {"key_id": key_id})
    if not rows or rows[0]["revoked_at"] is not None:
        return False
    store.update_rows("api_keys", {"revoked_at": naive_utc_now()}, {"key_id": key_id})
    return True


def list_keys(store: IdentityStore) -> list[dict[str, Any]]:
    """Key ids, names, scopes and dates; never the hashes."""
    return [
        {k: v for k, v in row.items() if k != "key_sha256"}
        for row in store.select_rows("api_keys", order_by=["created_at", "key_id"])
    ]


def authenticate(store: IdentityStore, presented: str | None) -> ApiKey | None:
    """The active key matching ``presented``, or None."""
    if not presented or not presented.startswith(KEY_PREFIX) or len(presented) > 256:
        return None
    digest = hash_key(presented)
    for row in store.select_rows("api_keys", {"key_sha256": digest}):
        # The index found the row by hash; compare again in constant time all the same.
        if row["revoked_at"] is None and hmac.compare_digest(row["key_sha256"], digest):
            key = ApiKey(row["key_id"], row["name"], frozenset(row["scopes"] or []), row.get("expires_at"))
            return None if key.expired() else key
    return None


def authenticate_cached(store: IdentityStore, presented: str | None, cache: KeyCache) -> ApiKey | None:
    """:func:`authenticate`, answered from ``cache`` while a success is fresh."""
    if not presented or not presented.startswith(KEY_PREFIX) or len(presented) > 256:
        return None
    digest = hash_key(presented)
    key = cache.get(digest)
    if key is None:
        key = authenticate(store, presented)
        if key is not None:
            cache.put(digest, key)
    return key


def cached_key(presented: str | None, cache: KeyCache) -> ApiKey | None:
    """The key ``presented`` names while its last success is fresh in ``cache``, else None;
    no store read."""
    if not presented or not presented.startswith(KEY_PREFIX) or len(presented) > 256:
        return None
    return cache.get(hash_key(presented))


def _authenticate_and_cache(state: AppState, presented: str | None) -> ApiKey | None:
    """The worker-thread part of a cache miss: the thread's store connection."""
    return authenticate_cached(state.store(), presented, state.key_cache)


def presented_key(request: Request) -> str | None:
    """``X-API-Key: <key>`` or ``Authorization: Bearer <key>``."""
    key = request.headers.get(HEADER)
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else None


def require(scope: str, budget: str = "default") -> Callable[..., Awaitable[ApiKey]]:
    """A dependency: 401 without a valid (unexpired, unrevoked) key, 403 when the key lacks
    ``scope``, 429 with ``Retry-After`` when the key spent its ``budget`` (see api.limits)."""
    if scope not in API_KEY_SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    # async: a sync dependency would cost a worker-thread hop per request. A hit (the usual
    # case) needs no store; a miss looks the key up on a worker thread's connection, so the
    # event loop never waits on the store.
    # The two security schemes only declare the key in the OpenAPI document; the key itself is
    # read by presented_key, which accepts either spelling.
    async def check(
        request: Request,
        _header: str | None = Security(API_KEY_HEADER),
        _bearer: HTTPAuthorizationCredentials | None = Security(BEARER),
    ) -> ApiKey:
        state = get_state(request)
        presented = presented_key(request)
        key = cached_key(presented, state.key_cache)
        if key is None:
            key = await state.read(_authenticate_and_cache, state, presented)
        if key is None or key.expired():
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or invalid API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not key.allows(scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this key lacks the '{scope}' scope")
        retry_after = state.limiter.spend(key.key_id, budget)
        if retry_after is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "rate limit exceeded for this key",
                headers={"Retry-After": str(retry_after)},
            )
        if state.key_use is not None:
            state.key_use.record(key.key_id)
        request.state.api_key = key
        return key

    return check
