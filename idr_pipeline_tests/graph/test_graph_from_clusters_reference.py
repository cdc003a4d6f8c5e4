"""identity_graph_from_clusters (Arrow lookups by position) against a reference in pandas joins.

The reference below is the straightforward definition: links by joining the clusters with the
ids and the clean profiles, overlaps by merge and groupby, counts by groupby, the registry by
merging the counts in. The frames are built to hit the awkward cases: nodes that are not clean
profiles, profiles in no cluster, missing sources and identities, Unicode ids, identities left
without a link, retired and merged ids in the registry, and fresh ids that collide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from idr_pipeline.graph.identity_graph import (
    MERGE_COLUMNS,
    REGISTRY_COLUMNS,
    empty_merges,
    empty_registry,
    identity_graph_from_clusters,
    rows_at,
)
from idr_pipeline.graph.stable_ids import assign_identity_ids, new_identity_id, new_identity_ids

NOW = "2026-02-01T00:00:00Z"
IDS = ["a", "b", "c", "é", "日本", "🙂x", "z9", "Z9", "a b", "", "ß", "m#1", "q", "r", "s", "t"]


def _reference(
    sources: pd.DataFrame,
    components: pd.DataFrame,
    previous_links: pd.DataFrame | None,
    registry: pd.DataFrame,
    old_merges: pd.DataFrame,
    now: str,
) -> dict:
    labels = pd.unique(components["component"])
    active = registry[registry.status == "active"][["identity_id", "created_at"]]
    if previous_links is not None:
        overlaps = (
            components.merge(previous_links.rename(columns={"record_id": "node"}), on="node")
            .groupby(["component", "identity_id"])
            .size()
            .rename("records")
            .reset_index()
            .merge(active, on="identity_id", how="inner")
        )
    else:
        overlaps = pd.DataFrame(columns=["component", "identity_id", "created_at", "records"])
    assignment = assign_identity_ids(
        pd.DataFrame({"component": labels}), overlaps, set(registry.identity_id), now
    )
    identity_of = dict(zip(assignment.components.component, assignment.components.identity_id, strict=True))
    source_of = dict(zip(sources.record_id, sources.source, strict=True))
    clustered = components[components.node.isin(source_of)]
    links = pd.DataFrame(
        {
            "record_id": clustered.node.to_numpy(dtype=object),
            "identity_id": clustered.component.map(identity_of).to_numpy(dtype=object),
            "source": clustered.node.map(source_of).to_numpy(dtype=object),
        }
    )
    counts = links.groupby("identity_id").size().rename("record_count").reset_index()
    new_merges = assignment.merges.assign(merged_at=now)[MERGE_COLUMNS]
    sizes = links.groupby("identity_id").size()
    rows = np.array([], dtype=np.int64)
    if len(sizes):
        largest = sizes.sort_index().idxmax()
        members = set(links.record_id[links.identity_id == largest])
        rows = np.flatnonzero(sources.record_id.isin(members).to_numpy())
    return {
        "links": links,
        "registry": _reference_registry(registry, assignment.components, assignment.merges, counts, now),
        "merges": pd.concat([old_merges, new_merges], ignore_index=True)[MERGE_COLUMNS],
        "new_merges": new_merges,
        "sizes": sizes,
        "largest_rows": rows,
    }


def _reference_registry(
    registry: pd.DataFrame, assigned: pd.DataFrame, merges: pd.DataFrame, counts: pd.DataFrame, now: str
) -> pd.DataFrame:
    active = assigned[["identity_id", "created_at"]].merge(counts, on="identity_id", how="left")
    active = active.assign(status="active", merged_into=None)
    previous = registry.set_index("identity_id")
    unchanged = active.identity_id.isin(previous.index)
    same_count = unchanged & active.identity_id.map(previous["record_count"]).eq(active.record_count)
    active["updated_at"] = now
    active.loc[same_count, "updated_at"] = active.loc[same_count, "identity_id"].map(previous["updated_at"])
    rest = registry[~registry.identity_id.isin(active.identity_id)].copy()
    merged_into = dict(zip(merges.merged_id, merges.survivor_id, strict=True))
    newly_merged = rest.identity_id.isin(merged_into)
    rest.loc[newly_merged, "status"] = "merged"
    rest.loc[newly_merged, "merged_into"] = rest.loc[newly_merged, "identity_id"].map(merged_into)
    newly_retired = (rest.status == "active") & ~newly_merged
    rest.loc[newly_retired, "status"] = "retired"
    rest.loc[newly_merged | newly_retired, "updated_at"] = now
    out = pd.concat([active[REGISTRY_COLUMNS], rest[REGISTRY_COLUMNS]], ignore_index=True)
    out["record_count"] = pd.to_numeric(out["record_count"], errors="coerce").fillna(0).astype("int64")
    return out


def _as_written(registry: pd.DataFrame) -> pa.Table:
    """The registry as run_graph writes it, so frames that differ only in dtype still compare."""
    schema = pa.schema([(c, pa.int64() if c == "record_count" else pa.string()) for c in REGISTRY_COLUMNS])
    return pa.Table.from_pandas(registry[REGISTRY_COLUMNS], schema=schema, preserve_index=False)


def _random_clusters(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean profiles and clusters over them: some nodes are no profile, some profiles no node."""
    ids = [*IDS, *(f"r{i:03d}" for i in range(n))]
    clean = [r for r in ids if rng.random() < 0.85]
    order = rng.permutation(len(clean))
    sources = pd.DataFrame(
        {
            "record_id": [clean[i] for i in order],
            "source": [rng.choice(["crm", "pos", None, "wéb"]) for _ in order],
        }
    )
    nodes = [r for r in ids if rng.random() < 0.9]
    group = rng.integers(0, max(len(nodes) // 3, 1), len(nodes))
    components = pd.DataFrame({"node": nodes, "group": group})
    components["component"] = components.groupby("group")["node"].transform("min")
    shuffled = components.iloc[rng.permutation(len(components))][["node", "component"]]
    return sources, shuffled.reset_index(drop=True)


def _check(sources, components, previous_links, registry, old_merges) -> None:
    expected = _reference(sources, components, previous_links, registry, old_merges, NOW)
    got = identity_graph_from_clusters(
        pa.Table.from_pandas(sources, preserve_index=False),
        components,
        None if previous_links is None else pa.Table.from_pandas(previous_links, preserve_index=False),
        registry,
        old_merges,
        NOW,
    )
    pd.testing.assert_frame_equal(got.links.to_pandas(), expected["links"])
    assert _as_written(got.registry).equals(_as_written(expected["registry"]))
    pd.testing.assert_frame_equal(got.registry, expected["registry"])
    pd.testing.assert_frame_equal(got.merges, expected["merges"])
    assert len(got.new_merges) == len(expected["new_merges"])
    pd.testing.assert_series_equal(got.sizes, expected["sizes"])
    if len(got.sizes):
        np.testing.assert_array_equal(got.rows_of(got.sizes.idxmax()), expected["largest_rows"])


@pytest.mark.parametrize("seed", range(6))
def test_first_run_matches_the_joins(seed):
    sources, components = _random_clusters(np.random.default_rng(seed), 40)
    _check(sources, components, None, empty_registry(), empty_merges())


@pytest.mark.parametrize("seed", range(6))
def test_rerun_matches_the_joins(seed):
    rng = np.random.default_rng(100 + seed)
    sources, before = _random_clusters(rng, 40)
    first = identity_graph_from_clusters(
        pa.Table.from_pandas(sources, preserve_index=False),
        before,
        None,
        empty_registry(),
        empty_merges(),
        "t0",
    )
    registry = first.registry.copy()
    # Some ids retired and merged long ago, an identity left without a link (count 0), a
    # previous link without an identity and links of records no longer clustered.
    registry = pd.concat(
        [
            registry,
            pd.DataFrame(
                {
                    "identity_id": ["idr_gone", "idr_old", "idr_empty"],
                    "created_at": ["t-1", "t-1", "t0"],
                    "status": ["retired", "merged", "active"],
                    "merged_into": [None, registry.identity_id.iloc[0] if len(registry) else None, None],
                    "record_count": [0, 0, 0],
                    "updated_at": ["t-1", "t-1", "t0"],
                }
            ),
        ],
        ignore_index=True,
    )
    previous = first.links.to_pandas()[["record_id", "identity_id"]]
    previous = pd.concat(
        [
            previous,
            pd.DataFrame({"record_id": ["a", "ghost", "日本"], "identity_id": [None, "idr_empty", None]}),
        ],
        ignore_index=True,
    )
    old_merges = pd.DataFrame(
        [["idr_old", registry.identity_id.iloc[0], "components_joined", "t-1"]], columns=MERGE_COLUMNS
    )
    sources2, after = _random_clusters(rng, 40)
    _check(sources2, after, previous, registry, old_merges)


def test_empty_clusters():
    sources = pd.DataFrame({"record_id": ["a"], "source": ["crm"]})
    components = pd.DataFrame({"node": pd.Series(dtype=object), "component": pd.Series(dtype=object)})
    _check(sources, components, None, empty_registry(), empty_merges())
    got = identity_graph_from_clusters(
        pa.Table.from_pandas(sources), components, None, empty_registry(), empty_merges(), NOW
    )
    assert got.links.num_rows == 0 and len(got.sizes) == 0 and got.registry.empty


def test_fresh_ids_that_collide_are_salted_in_turn():
    founding = ["a", "b", "a", "c"]  # "a" twice: the second must be salted
    known = {new_identity_id("c", set())}  # and "c" is taken already
    taken = set(known)
    expected = []
    for record in founding:
        expected.append(new_identity_id(record, taken))
        taken.add(expected[-1])
    assert new_identity_ids(founding, known) == expected
    assert new_identity_ids(["a", "a"], set()) == [new_identity_id("a", set()), expected[2]]
    assert new_identity_ids(["a", "b"], set()) == [new_identity_id("a", set()), new_identity_id("b", set())]
    assert new_identity_ids([], set()) == []


def test_rows_at_reads_the_rows_of_a_dataset_by_position(tmp_path):
    table = pa.table(
        {"k": [f"k{i}" for i in range(50)], "v": [None if i % 7 == 0 else f"é{i}" for i in range(50)]}
    )
    pq.write_table(table.slice(0, 30), tmp_path / "part-0.parquet", row_group_size=8)
    pq.write_table(table.slice(30), tmp_path / "part-1.parquet", row_group_size=6)
    dataset = ds.dataset(tmp_path, format="parquet")
    for rows in ([0], [7, 8, 29, 30, 31, 49], list(range(50)), []):
        expected = dataset.to_table(columns=["v", "k"]).take(pa.array(rows, pa.int64()))
        assert rows_at(dataset, np.array(rows, dtype=np.int64), ["v", "k"]).equals(expected)


def test_identity_left_without_a_link_is_never_unchanged():
    # idr_x had a count of 0 and keeps its id on a record that is no longer a clean profile:
    # a missing count never equalled the registry's 0, so it is updated now.
    registry = pd.DataFrame(
        [["idr_x", "t0", "active", None, 0, "t0"], ["idr_y", "t0", "active", None, 1, "t0"]],
        columns=REGISTRY_COLUMNS,
    )
    previous = pd.DataFrame({"record_id": ["n1", "n2"], "identity_id": ["idr_x", "idr_y"]})
    components = pd.DataFrame({"node": ["n1", "n2"], "component": ["n1", "n2"]})
    sources = pd.DataFrame({"record_id": ["n2", "n3"], "source": ["crm", None]})
    _check(sources, components, previous, registry, empty_merges())
    got = identity_graph_from_clusters(
        pa.Table.from_pandas(sources),
        components,
        pa.Table.from_pandas(previous),
        registry,
        empty_merges(),
        NOW,
    )
    assert got.registry.set_index("identity_id")["updated_at"].to_dict() == {"idr_x": NOW, "idr_y": "t0"}


def _reference_assign(components, overlaps, known_ids, now):
    """assign_identity_ids with pandas' own sorts."""
    owner = overlaps.sort_values(
        ["identity_id", "records", "component"], ascending=[True, False, True]
    ).drop_duplicates("identity_id")
    owner = owner.sort_values(["component", "created_at", "identity_id"])
    survivors = owner.drop_duplicates("component")[["component", "identity_id", "created_at"]]
    merged = owner[~owner.identity_id.isin(survivors.identity_id)].merge(
        survivors.rename(columns={"identity_id": "survivor_id"})[["component", "survivor_id"]], on="component"
    )
    merges = pd.DataFrame(
        {"merged_id": merged.identity_id.to_numpy(), "survivor_id": merged.survivor_id.to_numpy()}
    ).assign(reason="components_joined")
    fresh = components[~components.component.isin(survivors.component)].sort_values("component")
    taken, new_ids = set(known_ids), []
    for comp in fresh.component:
        new_ids.append(new_identity_id(comp, taken))
        taken.add(new_ids[-1])
    fresh_rows = pd.DataFrame(
        {"component": fresh.component.to_numpy(), "identity_id": new_ids, "created_at": now}
    )
    return pd.concat([survivors, fresh_rows], ignore_index=True), merges


@pytest.mark.parametrize("seed", range(8))
def test_assignment_sorts_as_pandas_did(seed):
    rng = np.random.default_rng(seed)
    labels = list(dict.fromkeys(rng.choice(IDS, 12)))
    previous = ["idr_a", "idr_B", "idr_é", "idr_日本", "idr_🙂", "idr_", "idr_z", "idr_ä"]
    pairs = {(rng.choice(labels), rng.choice(previous)) for _ in range(25)}
    created = {p: rng.choice(["t0", "t1", "t1", None]) for p in previous}
    overlaps = pd.DataFrame(
        [(c, i, created[i], int(rng.integers(1, 4))) for c, i in sorted(pairs)],
        columns=["component", "identity_id", "created_at", "records"],
    ).sample(frac=1, random_state=seed)  # ties on records and created_at, rows in any order
    if seed % 2:
        overlaps = pd.concat([overlaps, overlaps.head(3)])  # repeated rows: both sorts are stable
    components = pd.DataFrame({"component": rng.permutation(labels)})
    got = assign_identity_ids(components, overlaps, set(previous), NOW)
    expected_components, expected_merges = _reference_assign(components, overlaps, set(previous), NOW)
    pd.testing.assert_frame_equal(got.components, expected_components)
    pd.testing.assert_frame_equal(got.merges, expected_merges[["merged_id", "survivor_id", "reason"]])
    assert len(got.merges) > 0 or seed != 0
