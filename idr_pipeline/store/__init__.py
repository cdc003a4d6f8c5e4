"""The serving store: resolved identities, golden profiles and the identifier look-up index.

``open_store(settings.store_url)`` returns an :class:`IdentityStore`; SQLite is the embedded
default, SingleStore (or MariaDB/MySQL standing in for it) the server backend.
"""

from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.factory import StoreUrl, open_store, parse_store_url, redact_store_url
from idr_pipeline.store.tables import TABLES

__all__ = ["TABLES", "IdentityStore", "StoreUrl", "open_store", "parse_store_url", "redact_store_url"]
