"""Per-key request budgets, and the record of each key's last use.

Budgets use the ``limits`` library (moving windows kept in this process's memory): a key that
spent its budget gets 429 with ``Retry-After`` in whole seconds. ``/resolve`` (the costliest
read), activations and erasure have their own, stricter budgets beside the default one every
other route spends from. Budgets are per API process: behind a load balancer of n processes a
key may reach n times its budget.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from idr_pipeline.settings import IdrSettings
from idr_pipeline.store import IdentityStore

log = logging.getLogger(__name__)

#: Budget names routes pass to ``require(scope, budget)``.
BUDGETS = ("default", "resolve", "activations", "erasure")


class RateLimiter:
    """``spend(key_id, budget)`` -> None when allowed, else the seconds to wait."""

    def __init__(self, budgets: dict[str, str]) -> None:
        unknown = set(budgets) - set(BUDGETS)
        if unknown:
            raise ValueError(f"unknown rate budgets {sorted(unknown)}")
        self.items: dict[str, list[RateLimitItem]] = {
            name: parse_many(text) for name, text in budgets.items()
        }
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    @classmethod
    def from_settings(cls, settings: IdrSettings) -> RateLimiter:
        return cls(
            {
                "default": settings.api_rate_limit,
                "resolve": settings.api_rate_limit_resolve,
                "activations": settings.api_rate_limit_activations,
                "erasure": settings.api_rate_limit_erasure,
            }
        )

    def spend(self, key_id: str, budget: str = "default") -> int | None:
        items = self.items[budget]
        # Test every window before spending from any, so a refused request costs nothing.
        for item in items:
            if not self.limiter.test(item, key_id, budget):
                reset = self.limiter.get_window_stats(item, key_id, budget).reset_time
                return max(1, math.ceil(reset - time.time()))
        for item in items:
            self.limiter.hit(item, key_id, budget)
        return None


class KeyUseRecorder:
    """Writes ``api_keys.last_used_at`` at most once per ``interval`` seconds per key, on one
    background thread with its own connection: never a write on the request path."""

    def __init__(self, open_store: Callable[[], IdentityStore], interval: float = 60.0) -> None:
        self.open_store = open_store
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="key-use")
        self._store: IdentityStore | None = None

    def record(self, key_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key_id, -math.inf) < self.interval:
                return
            self._last[key_id] = now
        self._executor.submit(self._write, key_id, datetime.now(UTC).replace(tzinfo=None))

    def _write(self, key_id: str, when: datetime) -> None:
        try:
            if self._store is None:
                self._store = self.open_store()
            self._store.update_rows("api_keys", {"last_used_at": when}, {"key_id": key_id})
        except Exception:  # the request was served; a missed last-use stamp is only logged
            log.warning("could not record the last use of key %s", key_id, exc_info=True)

    def flush(self) -> None:
        """Wait for the writes queued so far (tests, shutdown)."""
        self._executor.submit(lambda: None).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._store is not None:
            self._store.close()
