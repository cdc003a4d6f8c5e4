"""Reading the erasure tombstones the cleaning step must honor."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from idr_pipeline.store.factory import open_store, parse_store_url


def load_tombstones(store_url: str | SecretStr) -> dict[str, set[str]]:
    """The store's erasure tombstones; none when the embedded store file does not exist yet.

    Any other failure propagates: cleaning without the tombstones would bring erased people back.
    """
    parsed = parse_store_url(store_url)
    if parsed.backend == "sqlite" and (parsed.path == ":memory:" or not Path(parsed.path).exists()):
        return {}
    with open_store(store_url) as store:
        store.ensure_schema()
        return store.tombstone_hashes()
