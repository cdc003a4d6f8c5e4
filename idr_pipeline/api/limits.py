"""Per-key request budgets, and the record of each key's last use.

Budgets are written in the ``limits`` library's notation (``"600/minute;20/second"``, parsed
by it) and kept as moving windows in this process's memory: a key that spent its budget gets
429 with ``Retry-After`` in whole seconds. The windows are kept here, not in ``limits``'
``MemoryStorage``: that storage expires its entries on a ``threading.Timer`` it starts again
about every 10 ms while requests arrive, and every such thread takes the GIL from the event
loop that answers the requests. Here a window drops its expired entries when it is spent from,
on the caller's thread. ``/resolve`` (the costliest
read), activations and erasure have their own, stricter budgets beside the default one every
other route spends from. Budgets are per API process: behind a load balancer of n processes a
key may reach n times its budget.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from limits import RateLimitItem, parse_many

from idr_pipeline.settings import IdrSettings
from idr_pipeline.store import IdentityStore

log = logging.getLogger(__name__)

#: Budget names routes pass to ``require(scope, budget)``.
BUDGETS = ("default", "resolve", "activations", "erasure")


class MovingWindow:
    """At most ``amount`` spends in any ``seconds`` long window: the times of the last
    ``amount`` spends, oldest first. Not thread-safe; :class:`RateLimiter` locks around it."""

    def __init__(self, amount: int, seconds: float) -> None:
        self.amount = amount
        self.seconds = seconds
        self._spent: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more spend fits; 0 when it fits now."""
        while self._spent and self._spent[0] <= now - self.seconds:
            self._spent.popleft()
        if len(self._spent) < self.amount:
            return 0.0
        return self._spent[0] + self.seconds - now

    def spend(self, now: float) -> None:
        self._spent.append(now)


class RateLimiter:
    """``spend(key_id, budget)`` -> None when allowed, else the seconds to wait."""

    def __init__(self, budgets: dict[str, str]) -> None:
        unknown = set(budgets) - set(BUDGETS)
        if unknown:
            raise ValueError(f"unknown rate budgets {sorted(unknown)}")
        self.items: dict[str, list[RateLimitItem]] = {
            name: parse_many(text) for name, text in budgets.items()
        }
        self._windows: dict[tuple[str, str], list[MovingWindow]] = {}
        self._lock = threading.Lock()

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
        now = time.monotonic()
        with self._lock:
            windows = self._windows.get((key_id, budget))
            if windows is None:
                windows = [MovingWindow(item.amount, item.get_expiry()) for item in items]
                self._windows[(key_id, budget)] = windows
            # Test every window before spending from any, so a refused request costs nothing.
            wait = max(window.wait(now) for window in windows)
            if wait > 0:
                return max(1, math.ceil(wait))
            for window in windows:
                window.spend(now)
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
