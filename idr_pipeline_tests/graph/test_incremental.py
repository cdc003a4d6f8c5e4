"""Incremental re-resolution against full recomputation, on random graphs and golden cases."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from idr_pipeline.graph.components import connected_components_local
from idr_pipeline.graph.incremental.state import (
    GraphState,
    Resolution,
    apply_batch,
    bootstrap_state,
    full_recompute,
)

KINDS = ("record", "email_key", "anonymous_id", "source_customer_key")


@st.composite
def batch_sequences(draw):
    """A random graph over typed keys, cut into a random sequence of batches."""
    pool = [f"{kind}:{i}" for kind in KINDS for i in range(draw(st.integers(2, 12)))]
    node_st = st.sampled_from(pool)
    batches = draw(
        st.lists(
            st.tuples(
                st.lists(node_st, max_size=6),
                st.lists(st.tuples(node_st, node_st), max_size=8),
            ),
            min_size=1,
            max_size=6,
        )
    )
    return batches


def _assignment(res: Resolution) -> dict[str, str]:
    return res.assignment()


def _merges(res: Resolution) -> set[tuple[str, str]]:
    return set(zip(res.merges.merged_id, res.merges.survivor_id, strict=True))


@given(batch_sequences())
@settings(max_examples=200, deadline=None)
def test_each_batch_equals_a_full_recomputation_carrying_ids_over(batches):
    """Same partition, same ids and same merges as the batch's own rules applied to everything."""
    state = GraphState()
    reference: Resolution | None = None
    all_nodes: list[str] = []
    all_edges: list[tuple[str, str]] = []
    for version, (nodes, edges) in enumerate(batches, start=1):
        now = f"t{version:03d}"
        before = state.resolution().assignment()
        state, delta = apply_batch(state, nodes, edges, version, now=now)
        all_nodes += nodes
        all_edges += edges
        reference = full_recompute(all_nodes, all_edges, previous=reference, now=now)
        got = state.resolution()
        assert _assignment(got) == _assignment(reference)
        assert _merges(got) == _merges(reference)
        active = reference.registry[reference.registry.status == "active"]
        assert set(got.registry[got.registry.status == "active"].identity_id) == set(active.identity_id)

        # The delta is exactly the nodes that are new or changed identity, and nothing else.
        after = got.assignment()
        changed = {n for n, i in after.items() if before.get(n) != i}
        assert set(delta.assignments.node) == changed
        assert dict(zip(delta.assignments.node, delta.assignments.identity_id, strict=True)) == {
            n: after[n] for n in changed
        }

    # Partition of the final state: the project's union-find over the union of all batches.
    labels = connected_components_local(all_nodes, all_edges)
    groups: dict[str, set[str]] = {}
    for node, label in labels.items():
        groups.setdefault(label, set()).add(node)
    assert state.resolution().partition() == {frozenset(g) for g in groups.values()}
    assert full_recompute(all_nodes, all_edges).partition() == state.resolution().partition()


@given(batch_sequences())
@settings(max_examples=100, deadline=None)
def test_merges_keep_the_oldest_identity(batches):
    state = GraphState()
    for version, (nodes, edges) in enumerate(batches, start=1):
        state, delta = apply_batch(state, nodes, edges, version, now=f"t{version:03d}")
        reg = state.registry().set_index("identity_id")
        for merged, survivor in zip(delta.merges.merged_id, delta.merges.survivor_id, strict=True):
            assert reg.status[merged] == "merged" and reg.merged_into[merged] == survivor
            assert (reg.created_at[survivor], survivor) < (reg.created_at[merged], merged)
            assert reg.status[survivor] == "active"
    # Every node's identity is active, and every merged id leads to an active one.
    reg = state.registry().set_index("identity_id")
    assert set(reg.status[state.resolution().links.identity_id.unique()]) <= {"active"}
    for identity in reg.index[reg.status == "merged"]:
        seen = {identity}
        while reg.status[identity] == "merged":
            identity = reg.merged_into[identity]
            assert identity not in seen
            seen.add(identity)


@given(batch_sequences())
@settings(max_examples=50, deadline=None)
def test_replaying_a_batch_changes_nothing(batches):
    state = GraphState()
    version = 0
    for nodes, edges in batches:
        version += 1
        state, _ = apply_batch(state, nodes, edges, version)
        before = state.resolution().assignment()
        version += 1
        state, delta = apply_batch(state, nodes, edges, version)
        assert delta.assignments.empty and delta.merges.empty and delta.identities.empty
        assert state.resolution().assignment() == before


def test_untouched_components_are_not_visited():
    """A batch touching one small component does no work on the others, however many."""
    state = GraphState()
    edges = [(f"record:{i}", f"email_key:{i // 3}") for i in range(3000)]
    state, _ = apply_batch(state, [], edges, 1, now="t1")
    state, delta = apply_batch(state, ["record:new"], [("record:new", "email_key:7")], 2, now="t2")
    # email_key:7 with records 21-23 (4 nodes), plus the new record.
    assert delta.touched_nodes == 5
    assert list(delta.assignments.node) == ["record:new"]
    assert delta.identities.record_count.tolist() == [4]


# ---------------------------------------------------------------------- golden cases


def test_identify_event_joins_two_identities_and_the_older_survives():
    state = GraphState()
    # Monday: a web account with its e-mail.
    state, _ = apply_batch(
        state, ["record:web-1"], [("record:web-1", "source_customer_key:web:u1")], 1, now="2024-01-01"
    )
    older = state.identity_of("record:web-1")
    # Tuesday: a shop record with a cookie.
    state, _ = apply_batch(
        state, ["record:shop-9"], [("record:shop-9", "anonymous_id:c9")], 2, now="2024-01-02"
    )
    younger = state.identity_of("record:shop-9")
    assert older != younger
    # Wednesday: the cookie signs in as u1.
    state, delta = apply_batch(
        state,
        [],
        [("anonymous_id:c9", "source_customer_key:web:u1")],
        3,
        now="2024-01-03",
        reason="identify_event",
    )
    assert delta.merges.to_dict("records") == [
        {"merged_id": younger, "survivor_id": older, "reason": "identify_event"}
    ]
    assert state.identity_of("record:shop-9") == older
    assert set(delta.assignments.node) == {"record:shop-9", "anonymous_id:c9"}
    row = state.registry().set_index("identity_id").loc[younger]
    assert (row.status, row.merged_into) == ("merged", older)
    survivor = delta.identities.set_index("identity_id").loc[older]
    assert (survivor.status, survivor.record_count) == ("active", 2)


def test_older_survives_even_when_its_id_sorts_later():
    state = bootstrap_state(
        links=pd.DataFrame({"record_id": ["a", "b"], "identity_id": ["idr_zzz", "idr_aaa"], "source": "crm"}),
        registry=pd.DataFrame(
            {"identity_id": ["idr_zzz", "idr_aaa"], "created_at": ["2020", "2021"], "status": "active"}
        ),
    )
    state, delta = apply_batch(state, [], [("record:a", "record:b")], 1, now="2024")
    assert delta.merges[["merged_id", "survivor_id"]].values.tolist() == [["idr_aaa", "idr_zzz"]]


def test_shared_identifiers_never_carry_an_edge():
    state = bootstrap_state(
        links=pd.DataFrame(
            {"record_id": ["a", "b", "c"], "identity_id": ["i1", "i2", "i3"], "source": "crm"}
        ),
        registry=pd.DataFrame({"identity_id": ["i1", "i2", "i3"], "created_at": "2020", "status": "active"}),
        identifiers=pd.DataFrame(
            {
                "id_type": ["email_key", "device_id", "device_id", "phone"],
                "id_value": ["a@x.com", "dev-1", "dev-1", "+15550001"],
                "identity_id": ["i1", "i2", "i3", "i1"],
            }
        ),
        shared=pd.DataFrame({"id_type": ["email_key"], "id_value": ["family@x.com"]}),
    )
    # dev-1 is held by two identities, family@x.com is a household e-mail: both blocked.
    assert {"device_id:dev-1", "email_key:family@x.com"} <= state.blocked
    assert state.identity_of("email_key:a@x.com") == "i1"
    assert state.identity_of("phone:+15550001") is None  # phones are left to the matcher
    edges = [("record:new1", "device_id:dev-1"), ("record:new1", "email_key:family@x.com")]
    state, delta = apply_batch(state, ["record:new1"], edges + [("record:new2", "email_key:a@x.com")], 1)
    assert delta.blocked_edges == 2 and delta.merges.empty
    assert state.identity_of("record:new2") == "i1"
    assert state.identity_of("record:new1") not in {"i1", "i2", "i3", None}


def test_bootstrap_reproduces_the_batch_partition():
    links = pd.DataFrame(
        {"record_id": ["r1", "r2", "r3", "r4"], "identity_id": ["i1", "i1", "i2", "i1"], "source": "crm"}
    )
    registry = pd.DataFrame(
        {"identity_id": ["i1", "i2", "i0"], "created_at": ["2020", "2021", "2019"],
         "status": ["active", "active", "merged"], "merged_into": [None, None, "i1"]}
    )  # fmt: skip
    ident = pd.DataFrame({"id_type": ["email_key"], "id_value": ["x@y.z"], "identity_id": ["i2"]})
    state = bootstrap_state(links, registry, ident)
    res = state.resolution()
    assert res.partition() == {
        frozenset({"record:r1", "record:r2", "record:r4"}),
        frozenset({"record:r3", "email_key:x@y.z"}),
    }
    edges = state.edge_frame()
    assert full_recompute(state.keys, edges).partition() == res.partition()
    # Ids carried over from the batch: a full recompute against itself changes nothing.
    again = full_recompute(state.keys, edges, previous=res, now="2030")
    assert again.assignment() == res.assignment() and again.merges.empty
    assert state.record_counts[state.id_slot["i1"]] == 3
    assert "i0" in state.id_slot  # merged ids stay known, so they are never reissued


def test_a_forced_split_holds_against_direct_and_transitive_stream_edges():
    """A steward split two records; an identify event linking their identities, directly or
    through a new cookie, is refused, while edges that join no split pair still merge."""
    state = GraphState()
    state, _ = apply_batch(state, ["record:a"], [("record:a", "anonymous_id:ca")], 1, now="t1")
    state, _ = apply_batch(state, ["record:b"], [("record:b", "anonymous_id:cb")], 2, now="t2")
    state, _ = apply_batch(state, ["record:c"], [("record:c", "anonymous_id:cc")], 3, now="t3")
    apart = [("record:a", "record:b")]
    edges = [("anonymous_id:ca", "anonymous_id:x"), ("anonymous_id:x", "anonymous_id:cb")]
    state, delta = apply_batch(state, [], edges, 4, now="t4", apart=apart)
    assert state.identity_of("record:a") != state.identity_of("record:b")
    assert delta.blocked_edges == 1
    state, delta = apply_batch(state, [], [("anonymous_id:cb", "anonymous_id:cc")], 5, now="t5", apart=apart)
    assert state.identity_of("record:b") == state.identity_of("record:c") != state.identity_of("record:a")
    state, _ = apply_batch(state, [], [("anonymous_id:ca", "anonymous_id:cc")], 6, now="t6", apart=apart)
    assert state.identity_of("record:a") != state.identity_of("record:c")  # c now shares b's identity
    without = GraphState()
    without, _ = apply_batch(without, ["record:a"], [("record:a", "anonymous_id:ca")], 1, now="t1")
    without, _ = apply_batch(without, ["record:b"], [("record:b", "anonymous_id:cb")], 2, now="t2")
    without, _ = apply_batch(without, [], edges, 3, now="t3")
    assert without.identity_of("record:a") == without.identity_of("record:b")  # the guard is what held
