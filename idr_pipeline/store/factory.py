"""Picking the store backend from ``IdrSettings.store_url``, so callers never name a backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.singlestore_store import SingleStoreIdentityStore
from idr_pipeline.store.sqlite_store import SqliteIdentityStore, sqlite_path_from_url

_SQLITE = ("sqlite",)
_SERVER = ("singlestoredb", "mysql", "mariadb")
DEFAULT_SERVER_PORT = 3306


@dataclass(frozen=True)
class StoreUrl:
    """A store URL taken apart without connecting, so a typo fails before any I/O does."""

    backend: Literal["sqlite", "server"]
    scheme: str
    path: str = ""  # sqlite only: the file path, or ':memory:'
    host: str = ""
    port: int = DEFAULT_SERVER_PORT
    user: str = ""
    password: str = ""
    database: str = ""

    def redacted(self) -> str:
        """The URL with the password masked, for logs and run summaries."""
        if self.backend == "sqlite":
            return f"{self.scheme}:///{self.path}"
        auth = f"{self.user}:***@" if self.password else (f"{self.user}@" if self.user else "")
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{self.database}"


def parse_store_url(url: str) -> StoreUrl:
    """``sqlite:///rel/path.db``, ``sqlite:////abs/path.db`` (SQLAlchemy's slashes) or
    ``singlestoredb|mysql|mariadb://user:pw@host[:port]/db``; anything else is a ValueError.
    """
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme in _SQLITE:
        return StoreUrl(backend="sqlite", scheme=scheme, path=sqlite_path_from_url(url))
    if sep and scheme in _SERVER:
        parts = urlsplit(url)
        database = parts.path.lstrip("/")
        if not parts.hostname or not database:
            raise ValueError(
                f"store URL {url!r} needs a host and a database: {scheme}://user:pw@host:port/db"
            )
        try:
            port = parts.port or DEFAULT_SERVER_PORT
        except ValueError as exc:  # a non-numeric port
            raise ValueError(f"store URL {url!r}: {exc}") from exc
        return StoreUrl(
            backend="server",
            scheme=scheme,
            host=parts.hostname,
            port=port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=database,
        )
    supported = ", ".join(f"{s}://" for s in _SQLITE + _SERVER)
    raise ValueError(f"unsupported store URL {url!r}: expected one of {supported}")


def open_store(url: str) -> IdentityStore:
    """``sqlite:///path.db`` (embedded) or ``singlestoredb://``/``mysql://user:pw@host:port/db``.

    The server backend is imported lazily so the embedded default does not pay for the
    ``singlestoredb`` import. The schema is not created here; call ``ensure_schema()``.
    """
    parsed = parse_store_url(url)
    if parsed.backend == "sqlite":
        return SqliteIdentityStore(parsed.path)

    return SingleStoreIdentityStore(url)
