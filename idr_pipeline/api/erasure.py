"""Erasure of a data subject: out of the store, out of the Faiss index, out of the lake, and
kept out, with a trail.

1. The request names one identifier; it must belong to exactly one identity (a household
   landline would erase the neighbors too: 409). Identities merged into that one earlier are
   listed, and erased only when the request says ``include_merged`` (else 409): a wrong merge
   must not silently erase a second person. ``dry_run`` lists what would go and changes nothing.
2. Keyed tombstones (HMAC-SHA256 under the tombstone key, never the values; see
   ``idr_pipeline.core.tombstones``) for every identifier the identities hold that no other
   identity holds, and for every record id, so the cleaning step drops the person's raw rows
   on every later run. A value nobody holds gets no tombstone.
3. A lake purge request: the purge job (``defs/privacy``) rewrites the raw batches, clean
   profiles, matching outputs and every other lake dataset without the person's rows.
4. One transaction deletes every store row naming the identities and records one ``erased``
   change per identity for the change feed; the index drops their vectors, and every day's
   behavior index (lookalikes) drops the identities' vectors. The changes go to the Kafka
   topic right away when the broker takes them, else with the next feed run.
5. Every request, refused ones included, appends a row to ``erasure_audit``: the key id, the
   request id, the id type and the keyed digest of the value asked about, the outcome, counts.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from idr_pipeline.api.state import AppState
from idr_pipeline.core.tombstones import Tombstones
from idr_pipeline.segments.behavior_index import remove_from_behavior_indexes
from idr_pipeline.segments.live_events import COOKIE
from idr_pipeline.standardize import (
    email_match_key,
    normalize_email,
    normalize_identifier,
    normalize_national_id,
    normalize_phone,
)
from idr_pipeline.store import IdentityStore
from idr_pipeline.store.change_log import commit_pending, record_changes
from idr_pipeline.store.changes import erased_changes
from idr_pipeline.store.stream_state import single_transaction
from idr_pipeline.stream.change_feed import publish_pending_changes

log = logging.getLogger(__name__)

#: The identifier type of a cookie (``COOKIE`` is ``<COOKIE_TYPE>:``, the held rows' holder prefix).
COOKIE_TYPE = COOKIE.removesuffix(":")
#: How long an erasure waits for the broker before it leaves its changes to the feed asset.
ERASURE_PUBLISH_TIMEOUT_S = 5.0


class SharedIdentifier(ValueError):
    """The identifier names several identities; erasing all of them would be wrong."""


class MergedIdentities(ValueError):
    """The identity absorbed others and the request did not say to erase them too."""

    def __init__(self, merged: list[str]) -> None:
        super().__init__(
            f"the identity has {len(merged)} merged-in identities {merged}; check them with dry_run and "
            "send include_merged=true to erase them too"
        )
        self.merged = merged


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
    dry_run: bool
    outcome: str
    identities: list[str]
    merged_identities: list[str]
    records: int
    shared_identifiers_kept: int
    rows_deleted: dict[str, int] = field(default_factory=dict)
    index_vectors_removed: int = 0
    behavior_vectors_removed: int = 0
    tombstones_written: int = 0
    purge_requested: bool = False
    record_ids: list[str] | None = None
    identifiers: list[dict[str, str]] | None = None
    changes_recorded: int = 0
    changes_published: bool = False

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def counts(self) -> dict[str, Any]:
        """What the audit keeps: counts only, no values."""
        return {
            "identities": len(self.identities),
            "merged_identities": len(self.merged_identities),
            "records": self.records,
            "shared_identifiers_kept": self.shared_identifiers_kept,
            "tombstones_written": self.tombstones_written,
            "index_vectors_removed": self.index_vectors_removed,
            "behavior_vectors_removed": self.behavior_vectors_removed,
            "rows_deleted": sum(self.rows_deleted.values()),
        }


def _merged_into(store: IdentityStore, identity_ids: list[str]) -> list[str]:
    """Identities folded into these ones earlier, however many merges back."""
    found: list[str] = []
    frontier = list(identity_ids)
    while frontier:
        rows = store.select_rows("merge_history", {"survivor_id": frontier})
        frontier = [
            r["merged_id"] for r in rows if r["merged_id"] not in found and r["merged_id"] not in identity_ids
        ]
        found += list(dict.fromkeys(frontier))
    return sorted(set(found))


def _audit(
    store: IdentityStore,
    tombstones: Tombstones,
    key_id: str,
    request_id: str,
    action: str,
    outcome: str,
    asked: tuple[str, str] | None,
    include_merged: bool,
    counts: dict[str, Any],
) -> None:
    store.append_rows(
        "erasure_audit",
        [
            {
                "audit_id": uuid.uuid4().hex,
                "request_id": request_id,
                "key_id": key_id,
                "action": action,
                "outcome": outcome,
                "id_type": asked[0] if asked else None,
                "value_digest": tombstones.digest(*asked) if asked else None,
                "include_merged": int(include_merged),
                "counts": counts,
            }
        ],
    )


def erase_subject(
    state: AppState,
    id_type: str,
    value: str,
    *,
    key_id: str,
    dry_run: bool = False,
    include_merged: bool = False,
) -> Erasure:
    """Erase (or with ``dry_run`` list) the subject holding this identifier; see the module doc.

    Raises ValueError for an unusable value, SharedIdentifier and MergedIdentities for refusals;
    each is audited before it propagates.
    """
    store = state.store()
    tombstones = Tombstones(key=state.tombstone_key)
    request_id = uuid.uuid4().hex
    action = "dry_run" if dry_run else "erase"

    def audit(outcome: str, counts: dict[str, Any]) -> None:
        _audit(store, tombstones, key_id, request_id, action, outcome, asked_first, include_merged, counts)

    asked = normalized_identifiers(id_type, value, state.settings.default_phone_region)
    asked_first = asked[0] if asked else None
    if not asked:
        audit("refused_unusable", {})
        raise ValueError(f"{id_type} value is not a usable identifier after normalization")
    owners = sorted({i for t, v in asked for i in store.lookup(t, v)})
    if len(owners) > 1:
        audit("refused_shared", {"identities": len(owners)})
        raise SharedIdentifier(
            f"this {id_type} is held by {len(owners)} identities; erase by a personal identifier"
        )
    if not owners:
        audit("not_found", {})
        return Erasure(request_id, dry_run, "not_found", [], [], 0, 0)
    merged = _merged_into(store, owners)
    if merged and not include_merged and not dry_run:
        audit("refused_merged", {"merged_identities": len(merged)})
        raise MergedIdentities(merged)
    identities = owners + (merged if include_merged else [])

    held = store.select_rows("identifiers", {"identity_id": identities})
    personal: set[tuple[str, str]] = set()
    shared = 0
    for row in held:
        pair = (row["id_type"], row["id_value"])
        if set(store.lookup(*pair)) - set(identities):
            shared += 1
        else:
            personal.add(pair)
    record_ids = sorted(
        r["record_id"] for r in store.select_rows("record_links", {"identity_id": identities})
    )
    if dry_run:
        result = Erasure(
            request_id, True, "would_erase", identities, merged, len(record_ids), shared,
            record_ids=record_ids,
            identifiers=[{"id_type": t, "id_value": v} for t, v in sorted(personal)],
        )  # fmt: skip
        audit("would_erase", result.counts())
        return result

    # Tombstones first, then the purge request: if anything below fails, the next cleaning run
    # and the purge already drop the person.
    rows = tombstones.tombstone_rows([*personal, *(("record_id", r) for r in record_ids)], request_id)
    store.upsert("tombstones", rows)
    store.upsert(
        "purge_requests",
        [
            {
                "request_id": request_id,
                "status": "pending",
                "identity_ids": identities,
                "record_ids": record_ids,
            }
        ],
    )
    links = store.select_rows("record_links", {"identity_id": identities})
    held_records: dict[str, list[str]] = {i: [] for i in identities}
    for link in links:
        held_records[link["identity_id"]].append(link["record_id"])
    changes = erased_changes(request_id, held_records)
    cookies = sorted(v for t, v in personal if t == COOKIE_TYPE)
    with single_transaction(store):
        deleted = store.erase_identities(identities, cookies, [COOKIE + c for c in cookies])
        record_changes(store, changes)
        commit_pending(store, [request_id])
    published = _publish_changes(state, store)
    removed = 0
    if state.index is not None and record_ids:
        with state.index_lock:
            removed = state.index.remove(record_ids)
            if removed:
                state.save_index()
    behavior_removed = remove_from_behavior_indexes(state.index_dir(), identities)
    result = Erasure(
        request_id, False, "erased", identities, merged, len(record_ids), shared,
        rows_deleted=deleted, index_vectors_removed=removed, behavior_vectors_removed=behavior_removed,
        tombstones_written=len(rows), purge_requested=True,
        changes_recorded=len(changes), changes_published=published,
    )  # fmt: skip
    audit("erased", result.counts())
    return result


def _publish_changes(state: AppState, store: IdentityStore) -> bool:
    """Send the committed, unsent changes (this erasure's among them) to the change topic.

    The erasure stands whether or not the broker takes them: they stay in ``identity_changes``
    and the ``identity_change_feed`` asset sends them on its next run; False says so.
    """
    settings = state.settings
    try:
        publish_pending_changes(
            store,
            settings.kafka_bootstrap_servers,
            settings.identity_changes_topic,
            timeout=ERASURE_PUBLISH_TIMEOUT_S,
        )
    except Exception as exc:
        log.warning("erasure changes stay queued for the change feed: %s", type(exc).__name__)
        return False
    return True
