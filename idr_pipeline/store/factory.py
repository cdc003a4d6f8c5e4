"""Picking the store backend from ``IdrSettings.store_url``, so callers never name a backend.

The URL may carry a password. It arrives as a ``SecretStr`` (or a plain string), is unwrapped
only to connect, and every message, log line or figure shows ``redact_store_url(url)`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

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
    password: str = field(default="", repr=False)
    database: str = ""

    def redacted(self) -> str:
        """The URL with the password masked, for logs and run summaries."""
        if self.backend == "sqlite":
            return f"{self.scheme}:///{self.path}"
        auth = f"{self.user}:***@" if self.password else (f"{self.user}@" if self.user else "")
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{self.database}"


def redact_store_url(url: str | SecretStr) -> str:
    """The URL to show: the password masked, the rest as given. A URL that does not parse
    is masked all the same (its userinfo's password), so an error message can show it too."""
    plain = _unwrap(url)
    try:
        return parse_store_url(plain).redacted()
    except ValueError:
        return _masked(plain)


def _unwrap(url: str | SecretStr) -> str:
    return url.get_secret_value() if isinstance(url, SecretStr) else url


def _masked(url: str) -> str:
    """``scheme://user:***@rest`` for any URL whose userinfo holds a password."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not (sep and at and ":" in userinfo):
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def parse_store_url(url: str | SecretStr) -> StoreUrl:
    """``sqlite:///rel/path.db``, ``sqlite:////abs/path.db`` (SQLAlchemy's slashes) or
    ``singlestoredb|mysql|mariadb://user:pw@host[:port]/db``; anything else is a ValueError,
    whose message shows the URL with its password masked.
    """
    url = _unwrap(url)
    shown = _masked(url)
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme in _SQLITE:
        return StoreUrl(backend="sqlite", scheme=scheme, path=sqlite_path_from_url(url))
    if sep and scheme in _SERVER:
        parts = urlsplit(url)
        database = parts.path.lstrip("/")
        if not parts.hostname or not database:
            raise ValueError(
                f"store URL {shown!r} needs a host and a database: {scheme}://user:pw@host:port/db"
            )
        try:
            port = parts.port or DEFAULT_SERVER_PORT
        except ValueError as exc:  # a non-numeric port
            raise ValueError(f"store URL {shown!r}: {exc}") from None
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
    raise ValueError(f"unsupported store URL {shown!r}: expected one of {supported}")


def open_store(url: str | SecretStr) -> IdentityStore:
    """``sqlite:///path.db`` (embedded) or ``singlestoredb://``/``mysql://user:pw@host:port/db``.

    The server backend is imported lazily so the embedded default does not pay for the
    ``singlestoredb`` import. The schema is not created here; call ``ensure_schema()``.
    """
    parsed = parse_store_url(url)
    if parsed.backend == "sqlite":
        return SqliteIdentityStore(parsed.path)

    return SingleStoreIdentityStore(_unwrap(url))
