"""Erasure end to end: erased through the API, then kept out by the next cleaning run.

The raw rows below still hold the erased person (the raw zone is never rewritten), under
spellings the tombstones never saw verbatim: the cleaning step normalizes, hashes and drops
them, and the row accounting still balances with the erased rows counted.
"""

from __future__ import annotations

import pandas as pd
import pytest

from idr_pipeline.core.schema import CANONICAL_COLUMNS, EXTRAS_COLUMN
from idr_pipeline.core.secrets import tombstone_key
from idr_pipeline.core.tombstones import TombstoneKeyMismatch
from idr_pipeline.ingest.readers import META_ERROR, META_LINE, META_RAW
from idr_pipeline.standardize.job import clean_profiles
from idr_pipeline.standardize.steps import CleaningStats
from idr_pipeline.store.tombstones import load_tombstones
from idr_pipeline_tests.api.conftest import Api


def _raw_frame(spark, rows: list[dict]):
    records = []
    for line, row in enumerate(rows, start=1):
        record = {c: row.get(c) for c in CANONICAL_COLUMNS}
        record.update(
            {
                EXTRAS_COLUMN: None,
                "_batch_id": "b1",
                "_ingested_at": "2025-01-01T00:00:00Z",
                META_LINE: line,
                META_ERROR: None,
                META_RAW: None,
                "_trust": 1,
            }
        )
        records.append(record)
    schema = ", ".join(
        [f"{c} string" for c in [*CANONICAL_COLUMNS, EXTRAS_COLUMN, "_batch_id", "_ingested_at"]]
        + [f"{META_LINE} long", f"{META_ERROR} string", f"{META_RAW} string", "_trust int"]
    )
    return spark.createDataFrame(pd.DataFrame(records).astype(object).where(pd.notna, None), schema)


RAW = [
    # Alice's e-mail, spelled differently, twice (one exact duplicate line).
    {"record_id": "crm-9", "source": "crm", "first_name": "Alice", "email": "ALICE.SMITH+news@gmail.com"},
    {"record_id": "crm-9", "source": "crm", "first_name": "Alice", "email": "ALICE.SMITH+news@gmail.com"},
    # Only her device id: the tombstone of an identifier she held, not the one she was erased by.
    {"record_id": "app-7", "source": "app", "device_id": "dev-id-001", "dob": "1980-02-03"},
    # Only her national id, formatted with dashes.
    {"record_id": "pos-3", "source": "pos", "national_id": "512-34-7788", "last_name": "Smith"},
    # One of her records again, with a name and birth date only: kept out by its record id.
    {
        "record_id": "crm-id-001-0",
        "source": "crm",
        "first_name": "Alice",
        "last_name": "Smith",
        "dob": "1980-02-03",
    },
    # Someone else entirely, and a row that is quarantined.
    {"record_id": "crm-10", "source": "crm", "first_name": "Bob", "email": "bob.jones@example.com"},
    {"record_id": "web-1", "source": "web", "city": "Nowhere"},
]


def test_erased_subject_stays_gone_after_cleaning_rerun(api: Api, spark, tmp_path) -> None:
    r = api.client.request(
        "DELETE",
        "/subjects",
        json={"id_type": "email", "value": "alice.smith@gmail.com", "include_merged": True},
        headers=api.h("admin"),
    )
    assert r.status_code == 200
    key = tombstone_key(api.settings)
    tombstones = load_tombstones(api.settings.store_url, key)
    assert "device_id" in tombstones.keyed and not tombstones.legacy
    # Without the key the same store's tombstones match nothing: cleaning refuses to run.
    with pytest.raises(TombstoneKeyMismatch):
        load_tombstones(api.settings.store_url, b"another key")

    result = clean_profiles(_raw_frame(spark, RAW), "US", tombstones, (tmp_path / "a").as_uri())
    clean_ids = {row["record_id"] for row in result.clean.select("record_id").collect()}
    quarantined_ids = {row["record_id"] for row in result.quarantined.select("record_id").collect()}
    assert clean_ids == {"crm-10"}
    assert quarantined_ids == {"web-1"}
    assert result.erased_rows == 5  # crm-9 twice, app-7, pos-3, crm-id-001-0
    stats = CleaningStats(
        raw_rows=result.raw_rows,
        clean_rows=len(clean_ids),
        quarantined_rows=len(quarantined_ids),
        collapsed_duplicates=result.collapsed_duplicates,
        top_reasons=pd.DataFrame(),
        clean_preview=pd.DataFrame(),
        quarantine_preview=pd.DataFrame(),
        erased_rows=result.erased_rows,
    )
    assert stats.raw_rows == 7 and stats.collapsed_duplicates == 0 and stats.balanced

    # Without tombstones the same raw rows bring her back: the hook is what keeps her out.
    unfiltered = clean_profiles(_raw_frame(spark, RAW), "US", {}, (tmp_path / "b").as_uri())
    assert {"crm-9", "app-7", "pos-3", "crm-id-001-0"} <= {
        row["record_id"] for row in unfiltered.clean.collect()
    }
    assert unfiltered.erased_rows == 0 and unfiltered.collapsed_duplicates == 1
