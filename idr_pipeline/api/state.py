"""What the API process holds between requests: store connections, the model, the index.

Everything expensive (the match model, the Faiss index, the blocking index, the embedding
model) is loaded once in the app's lifespan, because loading per request would cost more than
the whole latency budget. Store connections are per thread: neither sqlite3 connections nor
the MySQL client may be used by two threads at once, and FastAPI runs sync routes on a pool.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request

from idr_pipeline.api.auth import KeyCache
from idr_pipeline.settings import IdrSettings
from idr_pipeline.store import IdentityStore, open_store

if TYPE_CHECKING:  # pragma: no cover
    from idr_pipeline.api.resolve import Resolver
    from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
    from idr_pipeline.matching.fellegi_sunter import MatchModel

log = logging.getLogger(__name__)


class StorePool:
    """One store connection per thread, all closed together at shutdown."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._all: list[IdentityStore] = []
        self._lock = threading.Lock()

    def get(self) -> IdentityStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self.url)
            self._local.store = store
            with self._lock:
                self._all.append(store)
        return store

    def close(self) -> None:
        with self._lock:
            stores, self._all = self._all, []
        for store in stores:
            try:
                store.close()
            except Exception:  # pragma: no cover - closing a dead connection
                log.exception("closing a store connection failed")


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
    embedder: Any = None  # callable(list[profile dict]) -> np.ndarray, or None without a model
    publisher: Any = None  # ProfilePublisher for /resolve?register=true
    key_cache: KeyCache = field(default_factory=lambda: KeyCache(0.0))

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
