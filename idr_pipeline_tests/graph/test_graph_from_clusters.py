"""run_graph on the matcher's clusters: ids carried across runs through the lake, in pandas."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from idr_pipeline.core.catalog import CLEAN, LINKS, MERGES, REGISTRY
from idr_pipeline.core.lake import Lake
from idr_pipeline.graph.stable_ids import new_identity_id
from idr_pipeline.graph.steps import read_links, run_graph


def _write_clean(lake: Lake, record_ids: list[str]) -> None:
    columns = ["record_id", "source", "first_name", "last_name", "email", "phone", "dob"]
    rows = {c: [None] * len(record_ids) for c in columns} | {
        "record_id": record_ids,
        "source": ["crm"] * len(record_ids),
    }
    lake.write_pandas_version(
        pd.DataFrame(rows), *CLEAN, schema=pa.schema([(c, pa.string()) for c in columns])
    )


def _components(groups: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"node": r, "component": min(g)} for g in groups for r in g], columns=["node", "component"]
    )


def test_ids_carry_over_and_joined_identities_merge_into_the_oldest(tmp_path, spark):
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    _write_clean(lake, ["a", "b", "c", "d"])
    first = run_graph(
        spark, lake, now="2026-01-01T00:00:00Z", components=_components([["a", "b"], ["c"], ["d"]])
    )
    assert (first.records, first.identities, first.largest_cluster, first.new_merges) == (4, 3, 2, 0)
    links = read_links(lake).set_index("record_id")["identity_id"]
    assert links["a"] == links["b"] == new_identity_id("a", set())
    assert set(lake.read_latest_pandas(*LINKS)["source"]) == {"crm"}
    assert set(first.largest_preview["record_id"]) == {"a", "b"}

    # 'e' arrives and the matcher now joins c and d through it: of two identities created at
    # the same time, the smaller id survives and the other is recorded as merged into it.
    _write_clean(lake, ["a", "b", "c", "d", "e"])
    second = run_graph(
        spark, lake, now="2026-02-01T00:00:00Z", components=_components([["a", "b"], ["c", "d", "e"]])
    )
    after = read_links(lake).set_index("record_id")["identity_id"]
    assert after["a"] == links["a"]  # untouched identity keeps its id
    survivor, merged = sorted([links["c"], links["d"]])
    assert after["c"] == after["d"] == after["e"] == survivor
    assert second.new_merges == 1 and (second.identities, second.largest_cluster) == (2, 3)
    merges = lake.read_latest_pandas(*MERGES)
    assert merges[["merged_id", "survivor_id", "merged_at"]].values.tolist() == [
        [merged, survivor, "2026-02-01T00:00:00Z"]
    ]
    registry = lake.read_latest_pandas(*REGISTRY).set_index("identity_id")
    assert registry.loc[merged, ["status", "merged_into"]].tolist() == ["merged", survivor]
    assert (
        registry.loc[survivor, "record_count"] == 3
        and registry.loc[survivor, "created_at"] == "2026-01-01T00:00:00Z"
    )
    assert registry.loc[links["a"], "updated_at"] == "2026-01-01T00:00:00Z"  # same records: unchanged
