"""What the API process holds between requests: store connections, the model, the index.

Everything expensive (the match model, the Faiss index, the blocking index, the embedding
model) is loaded once in the app's lifespan, because loading per request would cost more than
the whole latency budget. Store connections are per thread: neither sqlite3 connections nor
the MySQL client may be used by two threads at once, and FastAPI runs sync routes on a pool
of worker threads (``IDR_API_THREADS`` of them); :class:`StorePool` lends each live thread
one connection and takes it back when the thread ends.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Request

from idr_pipeline.api.keys import KeyCache
from idr_pipeline.api.limits import KeyUseRecorder, RateLimiter
from idr_pipeline.settings import IdrSettings
from idr_pipeline.store import IdentityStore, open_store

if TYPE_CHECKING:  # pragma: no cover
    from idr_pipeline.api.activation import ActivationRunner
    from idr_pipeline.api.lookalike import BehaviorIndexCache
    from idr_pipeline.api.resolve import Resolver
    from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
    from idr_pipeline.candidates.profile_encoders import ProfileEncoder
    from idr_pipeline.scoring.fellegi_sunter import MatchModel

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Lease:
    """A thread's hold on one store; dropped with the thread's locals when the thread ends."""

    __slots__ = ("__weakref__", "store")

    def __init__(self, store: IdentityStore) -> None:
        self.store = store


class StorePool:
    """Store connections lent to threads: one per live thread, reused after the thread ends.

    A thread keeps its store for its whole life (no check-out per call, so a route can make
    several calls and pass the store around). When the thread ends (anyio retires worker
    threads idle for 10 s) its lease is garbage-collected and the store goes back to the idle
    list for the next thread, instead of leaking one open connection per retired thread and
    paying a new connect (TCP, login, server probe) inside some later request.
    ``prewarm(n)`` opens n connections at start-up, sized to the worker thread limit.
    """

    #: An idle connection older than this is pinged before reuse (servers drop idle sessions).
    STALE_AFTER_SECONDS = 60.0

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._idle: deque[tuple[IdentityStore, float]] = deque()
        self._all: list[IdentityStore] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> IdentityStore:
        lease = getattr(self._local, "lease", None)
        if lease is None:
            lease = _Lease(self._take())
            weakref.finalize(lease, self._give_back, lease.store)
            self._local.lease = lease
        return lease.store

    def prewarm(self, n: int) -> None:
        """Open connections until ``n`` are idle, so the first requests do not connect."""
        while len(self._idle) < n:
            self._give_back(self.open_unpooled(track=True))

    def open_unpooled(self, track: bool = False) -> IdentityStore:
        """A new connection the caller owns and closes (e.g. a background index rebuild)."""
        store = open_store(self.url)
        if track:
            with self._lock:
                self._all.append(store)
        return store

    @property
    def size(self) -> int:
        """Connections opened for threads and not closed: leased plus idle."""
        return len(self._all)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def _take(self) -> IdentityStore:
        while True:
            try:
                store, since = self._idle.popleft()
            except IndexError:
                return self.open_unpooled(track=True)
            if time.monotonic() - since < self.STALE_AFTER_SECONDS or _alive(store):
                return store
            self._discard(store)

    def _give_back(self, store: IdentityStore) -> None:
        if self._closed:
            return
        self._idle.append((store, time.monotonic()))

    def _discard(self, store: IdentityStore) -> None:
        with self._lock:
            if store in self._all:
                self._all.remove(store)
        try:
            store.close()
        except Exception:  # pragma: no cover - closing a dead connection
            log.debug("closing a dead store connection failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            stores, self._all = self._all, []
            self._idle.clear()
        for store in stores:
            try:
                store.close()
            except Exception:  # pragma: no cover - closing a dead connection
                log.exception("closing a store connection failed")


def _alive(store: IdentityStore) -> bool:
    try:
        store.query("SELECT 1")
        return True
    except Exception:
        return False


@dataclass
class AppState:
    settings: IdrSettings
    pool: StorePool
    model: MatchModel | None = None
    model_error: str | None = None
    index: FaissCandidateIndex | None = None
    index_error: str | None = None
    #: Guards the index: Faiss search and remove_ids must not run concurrently.
    index_lock: threading.Lock = field(default_factory=threading.Lock)
    resolver: Resolver | None = None
    #: The newest behavior index, for lookalike expansions (loaded on first use).
    behavior: BehaviorIndexCache | None = None
    #: The profile encoder the index was built with (None when it cannot serve the index).
    encoder: ProfileEncoder | None = None
    embedder: Any = None  # callable(list[profile dict]) -> np.ndarray, or None without an encoder
    publisher: Any = None  # ProfilePublisher for /resolve?register=true
    key_cache: KeyCache = field(default_factory=lambda: KeyCache(0.0))
    limiter: RateLimiter = field(
        default_factory=lambda: RateLimiter(
            {b: "1000000/second" for b in ("default", "resolve", "activations", "erasure")}
        )
    )
    key_use: KeyUseRecorder | None = None
    activations: ActivationRunner | None = None
    #: The tombstone key (erasure writes keyed tombstones and audit digests with it).
    tombstone_key: bytes = field(default=b"", repr=False)
    #: Worker threads for store reads off the event loop (``IDR_API_READ_THREADS``), apart
    #: from the default pool the sync routes and /resolve use; set in the app's lifespan.
    read_limiter: anyio.CapacityLimiter | None = None

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a read worker thread (its own store connection via ``store()``)."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.read_limiter)

    def store(self) -> IdentityStore:
        return self.pool.get()

    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    def save_index(self) -> None:
        """Persist the index after a removal, so a restart cannot bring an erased vector back."""
        if self.index is not None:
            self.index.save(self.index_dir())


def get_state(request: Request) -> AppState:
    return request.app.state.idr
