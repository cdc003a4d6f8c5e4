"""Spark connected components against the union-find reference, on graphs that stress it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idr_pipeline.graph.components import connected_components, connected_components_local


def _random_graph(seed: int, n: int, m: int) -> tuple[list[str], list[tuple[str, str]]]:
    rng = random.Random(seed)
    nodes = [f"r{i:05d}" for i in range(n)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(m)]
    return nodes, edges


def _spark_components(spark, nodes, edges) -> tuple[dict[str, str], int]:
    node_df = spark.createDataFrame([(n,) for n in nodes], "node string")
    edge_df = spark.createDataFrame(edges or [], "src string, dst string")
    result, rounds = connected_components(node_df, edge_df)
    return {r.node: r.component for r in result.collect()}, rounds


@given(
    nodes=st.sets(st.text("abcdefgh", min_size=1, max_size=3), min_size=1, max_size=30),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_union_find_labels_are_component_minimums(nodes, data):
    node_list = sorted(nodes)
    edges = data.draw(
        st.lists(st.tuples(st.sampled_from(node_list), st.sampled_from(node_list)), max_size=40)
    )
    labels = connected_components_local(node_list, edges)
    assert set(labels) == set(node_list)
    for a, b in edges:
        assert labels[a] == labels[b]
    for node, label in labels.items():
        assert label <= node
        assert labels[label] == label


@pytest.mark.parametrize(("seed", "n", "m"), [(1, 300, 200), (2, 500, 600), (3, 50, 0)])
def test_spark_matches_union_find_on_random_graphs(spark, seed, n, m):
    nodes, edges = _random_graph(seed, n, m)
    got, _ = _spark_components(spark, nodes, edges)
    assert got == connected_components_local(nodes, edges)


def test_long_chain_converges_in_few_rounds(spark):
    """Pointer jumping: a 400-node chain (reversed ids, the worst case) takes O(log n) rounds."""
    nodes = [f"n{i:04d}" for i in range(400)]
    edges = [(nodes[i], nodes[i + 1]) for i in range(399)]
    got, rounds = _spark_components(spark, list(reversed(nodes)), edges)
    assert set(got.values()) == {"n0000"}
    assert rounds <= 20
