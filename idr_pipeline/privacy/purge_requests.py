"""Taking the store's pending purge requests through the lake purge, and recording the outcome.

The API's erasure leaves a ``purge_requests`` row (status pending) with the erased identity and
record ids; :func:`run_pending_purges` purges the lake for all pending (and earlier failed)
requests at once, re-keys the plain SHA-256 tombstones whose values it came across, marks the
requests done (clearing the ids they carried) and appends the outcome to ``erasure_audit``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from idr_pipeline.core.tombstones import Tombstones, legacy_digest
from idr_pipeline.ingest.mapping import SourceMapping
from idr_pipeline.privacy.purge import Subjects, purge_lake
from idr_pipeline.store import IdentityStore
from idr_pipeline.store.change_log import forget_records_of

#: Requests the purge takes: new ones, and ones whose purge failed before.
OPEN_STATUSES = ["pending", "failed"]


def pending_request_ids(store: IdentityStore) -> list[str]:
    return sorted(r["request_id"] for r in store.select_rows("purge_requests", {"status": OPEN_STATUSES}))


def run_pending_purges(
    store: IdentityStore,
    lake_uri: str,
    mappings: Mapping[str, SourceMapping],
    default_region: str,
    key: bytes,
) -> dict[str, Any]:
    """Purge the lake for every open request; the report's counts (empty when none was open)."""
    requests = store.select_rows("purge_requests", {"status": OPEN_STATUSES})
    if not requests:
        return {}
    ids = [r["request_id"] for r in requests]
    store.update_rows("purge_requests", {"status": "running", "error": None}, {"request_id": ids})
    subjects = Subjects(
        tombstones=Tombstones.from_rows(store.tombstone_rows(), key),
        record_ids={str(r) for q in requests for r in (q["record_ids"] or [])},
        identity_ids={str(i) for q in requests for i in (q["identity_ids"] or [])},
        default_region=default_region,
    )
    try:
        report = purge_lake(lake_uri, subjects, mappings)
    except Exception as exc:
        store.update_rows(
            "purge_requests", {"status": "failed", "error": type(exc).__name__}, {"request_id": ids}
        )
        _audit(store, ids, "failed", {"error": type(exc).__name__})
        raise
    rekeyed = _rekey_legacy(store, subjects)
    # Identities the lake's links tie only to purged records leave the store too (the erasure
    # took the ones the store knew; this catches any the lake knew besides).
    deleted = store.erase_identities(sorted(subjects.identity_ids))
    forget_records_of(store, sorted(subjects.identity_ids))
    counts = {
        **report.as_dict(),
        "requests": len(ids),
        "legacy_tombstones_rekeyed": rekeyed,
        "store_rows_deleted": sum(deleted.values()),
    }
    store.update_rows(
        "purge_requests",
        {
            "status": "done",
            "finished_at": datetime.now(UTC).replace(tzinfo=None),
            "counts": counts,
            "identity_ids": None,
            "record_ids": None,
        },
        {"request_id": ids},
    )
    _audit(store, ids, "purged", counts)
    return counts


def _rekey_legacy(store: IdentityStore, subjects: Subjects) -> int:
    """Keyed tombstones for the legacy ones whose values the purge found; the plain ones go."""
    found = sorted(subjects.legacy_found)
    if not found:
        return 0
    store.upsert("tombstones", subjects.tombstones.tombstone_rows(found, "rekeyed"))
    for id_type, value in found:
        store.delete_rows(
            "tombstones", {"id_type": id_type, "value_sha256": legacy_digest(value), "scheme": None}
        )
    return len(found)


def _audit(store: IdentityStore, request_ids: list[str], outcome: str, counts: dict[str, Any]) -> None:
    store.append_rows(
        "erasure_audit",
        [
            {
                "audit_id": uuid.uuid4().hex,
                "request_id": request_id,
                "key_id": None,
                "action": "purge",
                "outcome": outcome,
                "counts": counts,
            }
            for request_id in request_ids
        ],
    )
