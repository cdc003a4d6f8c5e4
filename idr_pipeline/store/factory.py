"""Picking the store backend from ``IdrSettings.store_url``, so callers never name a backend."""

from __future__ import annotations

from idr_pipeline.store.base import IdentityStore

_SQLITE = ("sqlite",)
_SERVER = ("singlestoredb", "mysql", "mariadb")


def open_store(url: str) -> IdentityStore:
    """``sqlite:///path.db`` (embedded) or ``singlestoredb://``/``mysql://user:pw@host:port/db``.

    The server backend is imported lazily so the embedded default does not pay for the
    ``singlestoredb`` import. The schema is not created here; call ``ensure_schema()``.
    """
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme in _SQLITE:
        from idr_pipeline.store.sqlite_store import SqliteIdentityStore

        return SqliteIdentityStore.from_url(url)
    if sep and scheme in _SERVER:
        from idr_pipeline.store.singlestore_store import SingleStoreIdentityStore

        return SingleStoreIdentityStore(url)
    supported = ", ".join(f"{s}://" for s in _SQLITE + _SERVER)
    raise ValueError(f"unsupported store URL {url!r}: expected one of {supported}")
