"""An authenticated API key and the cache of recent successes; no FastAPI, no store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from idr_pipeline.core.clock import naive_utc_now


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str | None
    scopes: frozenset[str]
    expires_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or naive_utc_now())


class KeyCache:
    """Keys that authenticated recently, by SHA-256, each trusted for ``ttl`` seconds.

    Without it every request paid a store round trip for its key before anything else, on
    the event loop (where a server store's network wait also hands the GIL to busy worker
    threads and stalls every queued request). Only successes are kept: an unknown or revoked
    key is looked up every time, and a cached key is looked up again once its entry expires,
    so a revocation takes effect within ``ttl``. ``ttl`` 0 turns caching off.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[ApiKey, float]] = {}

    def get(self, digest: str) -> ApiKey | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            self._entries.pop(digest, None)
            return None
        return entry[0]

    def put(self, digest: str, key: ApiKey) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = (key, time.monotonic() + self.ttl)
