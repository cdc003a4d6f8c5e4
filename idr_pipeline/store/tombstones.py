"""Reading the erasure tombstones the cleaning step must honor."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from idr_pipeline.core.secrets import tombstone_key
from idr_pipeline.core.tombstones import Tombstones
from idr_pipeline.settings import get_settings
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.factory import open_store, parse_store_url


def load_tombstones(store_url: str | SecretStr, key: bytes | None = None) -> Tombstones:
    """The store's erasure tombstones, checked with the tombstone key (the settings' when
    ``key`` is None); none when the embedded store file does not exist yet.

    Any other failure propagates, including tombstones written under another key
    (TombstoneKeyMismatch): cleaning without the tombstones would bring erased people back.
    """
    parsed = parse_store_url(store_url)
    if parsed.backend == "sqlite" and (parsed.path == ":memory:" or not Path(parsed.path).exists()):
        return Tombstones()
    with open_store(store_url) as store:
        store.ensure_schema()
        return store_tombstones(store, key)


def store_tombstones(store: IdentityStore, key: bytes | None = None) -> Tombstones:
    """The tombstones of an open store, checked as ``load_tombstones`` checks them."""
    rows = store.tombstone_rows()
    if not rows:
        return Tombstones()
    return Tombstones.from_rows(rows, key if key is not None else tombstone_key(get_settings()))
