"""Erasure of a data subject: out of the store, out of the Faiss index, and kept out.

Kept out is the hard part: the raw zone still holds the person's source rows, so the next
pipeline run would resolve them straight back. A tombstone per identifier (its SHA-256, never
the value) is what the cleaning step checks; see ``idr_pipeline.standardize.batches.erased_mask``.

An identifier that other identities also hold (a household landline) is not tombstoned: that
would erase the neighbors' records on the next run. The identifier the request names must
belong to exactly one identity, or the request is refused, for the same reason.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from idr_pipeline.api.state import AppState
from idr_pipeline.standardize import (
    email_match_key,
    normalize_email,
    normalize_identifier,
    normalize_national_id,
    normalize_phone,
)
from idr_pipeline.store import IdentityStore


class SharedIdentifier(ValueError):
    """The identifier names several identities; erasing all of them would be wrong."""


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalized_identifiers(id_type: str, value: str, default_region: str) -> list[tuple[str, str]]:
    """(id_type, value) pairs as the pipeline stores them; empty when the value is unusable."""
    if id_type in ("email", "email_key"):
        email = normalize_email(value).value
        key = email_match_key(email) if email else None
        return [(t, v) for t, v in (("email", email), ("email_key", key)) if v]
    if id_type == "phone":
        phone = normalize_phone(value, default_region).value
        return [("phone", phone)] if phone else []
    if id_type == "national_id":
        nid = normalize_national_id(value).value
        return [("national_id", nid)] if nid else []
    if id_type == "source_customer_key":
        source, sep, customer = value.partition(":")
        customer_id = normalize_identifier(customer).value if sep else None
        return (
            [("source_customer_key", f"{source.strip()}:{customer_id}")]
            if customer_id and source.strip()
            else []
        )
    normalized = normalize_identifier(value).value
    return [(id_type, normalized)] if normalized else []


@dataclass
class Erasure:
    request_id: str
    identities: list[str]
    records: int
    rows_deleted: dict[str, int]
    index_vectors_removed: int
    tombstones_written: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _merged_into(store: IdentityStore, identity_ids: list[str]) -> list[str]:
    """Identities folded into these ones earlier: the same person under an older id."""
    rows = store.select_rows("merge_history", {"survivor_id": identity_ids})
    return [r["merged_id"] for r in rows]


def erase_subject(state: AppState, id_type: str, value: str) -> Erasure:
    store = state.store()
    request_id = uuid.uuid4().hex
    asked = normalized_identifiers(id_type, value, state.settings.default_phone_region)
    if not asked:
        raise ValueError(f"{id_type} value is not a usable identifier after normalization")
    owners = sorted({i for t, v in asked for i in store.lookup(t, v)})
    if len(owners) > 1:
        raise SharedIdentifier(
            f"this {id_type} is held by {len(owners)} identities; erase by a personal identifier"
        )
    identities = owners + [i for i in _merged_into(store, owners) if i not in owners] if owners else []

    held = store.select_rows("identifiers", {"identity_id": identities}) if identities else []
    tombstones = set(asked)
    for row in held:
        others = set(store.lookup(row["id_type"], row["id_value"])) - set(identities)
        if not others:
            tombstones.add((row["id_type"], row["id_value"]))
    record_ids = [r["record_id"] for r in store.select_rows("record_links", {"identity_id": identities})]

    # Tombstones first: if anything below fails, the next run already drops the person.
    store.upsert(
        "tombstones",
        [
            {"id_type": t, "value_sha256": sha256_hex(v), "request_id": request_id}
            for t, v in sorted(tombstones)
        ],
    )
    deleted = store.erase_identities(identities)
    removed = 0
    if state.index is not None and record_ids:
        with state.index_lock:
            removed = state.index.remove(record_ids)
            if removed:
                state.save_index()
    return Erasure(
        request_id=request_id,
        identities=identities,
        records=len(record_ids),
        rows_deleted=deleted,
        index_vectors_removed=removed,
        tombstones_written=len(tombstones),
    )
