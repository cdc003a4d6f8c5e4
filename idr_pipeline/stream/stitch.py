"""Stitching the streams into the identity graph: what the streaming asset calls per micro-batch.

``idr.profiles`` records and ``identify`` events become nodes and edges of the incremental
graph (records are standardized with the batch's own normalizers first, so a streamed
e-mail meets the batch's ``email_key``), the touched components are re-resolved, and only the
changed rows reach the store. The state lives beside the batch output in the lake and is
bootstrapped from it, so the stream continues from what the batch resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from idr_pipeline.core.catalog import IDENTIFIERS, INCREMENTAL_GRAPH, LINKS, REGISTRY, SHARED_IDENTIFIERS
from idr_pipeline.core.clock import utc_timestamp
from idr_pipeline.core.tombstones import Tombstones
from idr_pipeline.graph.incremental.persist import BatchInput, StateStore
from idr_pipeline.graph.incremental.state import (
    RECORD,
    STITCH_TYPES,
    Delta,
    GraphState,
    bootstrap_state,
    node_key,
)
from idr_pipeline.standardize.batches import erased_mask, tombstoned
from idr_pipeline.standardize.email import email_match_key
from idr_pipeline.standardize.frame import EMAIL_KEY, QUARANTINE_REASON, standardize_frame
from idr_pipeline.standardize.identifiers import normalize_identifier
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.stream.stitch_store import apply_delta

#: The source whose ``source_customer_id`` is the event ``user_id`` (as in segments.events).
USER_ID_SOURCE = "web"
#: Identifiers stored for look-ups but not linked on here (the batch matcher weighs them).
LOOKUP_ONLY_TYPES = ("email", "phone", "national_id")
#: The graph key type of each identifying event field (``event_keys`` columns).
EVENT_KEY_TYPES = {"anonymous_id": "anonymous_id", "user_id": "source_customer_key", "email": "email_key"}
PROFILE_REASON = "profile_stream"
IDENTIFY_REASON = "identify_event"

Resolver = Callable[[str, str], str | None]


class LakeLike(Protocol):
    def path(self, *parts: str) -> str: ...
    def latest_version(self, zone: str, name: str) -> str | None: ...
    def has_dataset(self, zone: str, name: str) -> bool: ...
    def read_latest_pandas(self, zone: str, name: str, columns: list[str] | None = None) -> pd.DataFrame: ...


@dataclass
class StitchResult:
    """What one micro-batch did: graph figures, merges, and rows changed per store table."""

    versions: list[int] = field(default_factory=list)
    records: int = 0
    quarantined: int = 0
    # Streamed records and identify events left out because they carry a tombstoned value.
    erased_records: int = 0
    erased_events: int = 0
    identify_events: int = 0
    new_nodes: int = 0
    new_edges: int = 0
    blocked_edges: int = 0
    touched_nodes: int = 0
    new_identities: int = 0
    merges: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["merged_id", "survivor_id", "reason"])
    )
    changed: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------- streams -> graph


def _valid(values: pd.Series, normalize: Callable[[str], Any]) -> pd.Series:
    """Normalized text per row (None when missing or rejected), each distinct value once."""
    codes, uniques = pd.factorize(values.astype(object).where(values.notna(), None))
    table = np.array([normalize(u) for u in uniques] + [None], dtype=object)
    return pd.Series(table[codes], index=values.index, dtype=object)


def _identifier(value: str) -> str | None:
    return normalize_identifier(value).value


def profile_graph(
    records: pd.DataFrame, default_region: str = "US", tombstones: Tombstones | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int, int]:
    """(nodes, edges, look-up identifiers, quarantined rows, erased rows) of canonical profile
    records.

    Records without ``email_key`` have not been standardized yet and go through
    ``standardize_frame``; rows it quarantines are left out, as the batch leaves them out. A
    record carrying a value ``tombstones`` names (an erased subject's identifier, or its record
    id) is left out and counted, as batch cleaning leaves it out.
    """
    quarantined = erased = 0
    if EMAIL_KEY not in records.columns:
        records = standardize_frame(records, default_region)
        usable = records[QUARANTINE_REASON].isna()
        quarantined = int((~usable).sum())
        records = records[usable]
    if tombstones:
        hit = erased_mask(records, tombstones)
        erased = int(hit.sum())
        records = records[~hit]
    records = records.drop_duplicates("record_id", keep="last")
    rec = (RECORD + ":" + records.record_id.astype(str)).to_numpy(dtype=object)
    nodes = pd.DataFrame({"node": rec, "source": records.source.to_numpy(dtype=object)})
    values = {t: records[t] for t in STITCH_TYPES if t in records.columns and t != "source_customer_key"}
    if "source_customer_id" in records.columns:
        has = records.source_customer_id.notna()
        values["source_customer_key"] = (records.source + ":" + records.source_customer_id).where(has, None)
    edges = [
        pd.DataFrame(
            {"src": rec[col.notna().to_numpy()], "dst": (t + ":" + col[col.notna()]).to_numpy(dtype=object)}
        )
        for t, col in values.items()
    ]
    lookups = [
        pd.DataFrame(
            {
                "record_id": records.record_id[records[t].notna()],
                "id_type": t,
                "id_value": records[t].dropna(),
            }
        )
        for t in LOOKUP_ONLY_TYPES
        if t in records.columns
    ]
    edge_frame = pd.concat(edges, ignore_index=True) if edges else pd.DataFrame(columns=["src", "dst"])
    lookup_frame = (
        pd.concat(lookups, ignore_index=True)
        if lookups
        else pd.DataFrame(columns=["record_id", "id_type", "id_value"])
    )
    return nodes, edge_frame, lookup_frame, quarantined, erased


def event_keys(events: pd.DataFrame, user_id_source: str = USER_ID_SOURCE) -> pd.DataFrame:
    """Per event the graph keys of its cookie, account and e-mail (None where absent/invalid)."""

    def column(name: str) -> pd.Series:
        return events[name] if name in events.columns else pd.Series(None, index=events.index, dtype=object)

    anon = _valid(column("anonymous_id"), _identifier)
    user = _valid(column("user_id"), _identifier)
    email = _valid(column("email"), email_match_key)
    return pd.DataFrame(
        {
            "anonymous_id": (f"{EVENT_KEY_TYPES['anonymous_id']}:" + anon).where(anon.notna(), None),
            "user_id": (f"{EVENT_KEY_TYPES['user_id']}:{user_id_source}:" + user).where(user.notna(), None),
            "email": (f"{EVENT_KEY_TYPES['email']}:" + email).where(email.notna(), None),
        },
        index=events.index,
    )


def erased_events(
    events: pd.DataFrame, tombstones: Tombstones, user_id_source: str = USER_ID_SOURCE
) -> np.ndarray:
    """Events whose cookie, account or e-mail an erasure tombstone names: an identify event of
    an erased subject must not stitch their identifiers back together. Each graph key of
    ``event_keys`` is ``<id_type>:<value>``, the type and the value a tombstone names."""
    keys = event_keys(events, user_id_source)
    hit = np.zeros(len(events), dtype=bool)
    for column, id_type in EVENT_KEY_TYPES.items():
        hit |= tombstoned(tombstones, id_type, keys[column].str.slice(len(id_type) + 1))
    return hit


def identify_graph(events: pd.DataFrame, user_id_source: str = USER_ID_SOURCE) -> pd.DataFrame:
    """Edges of identify events: the cookie to the account and to the e-mail (a star per event)."""
    if "type" in events.columns:
        events = events[events["type"] == "identify"]
    keys = event_keys(events, user_id_source)
    hub = keys.anonymous_id.fillna(keys.user_id)
    parts = [
        pd.DataFrame({"src": hub[ok], "dst": keys[c][ok]})
        for c in ("user_id", "email")
        for ok in [hub.notna() & keys[c].notna() & (hub != keys[c])]
    ]
    return pd.concat(parts, ignore_index=True).astype(object)


# ---------------------------------------------------------------------- state location


def bootstrap_from_lake(lake: LakeLike) -> GraphState:
    """The batch's resolution as the stream's starting state (empty before the first batch run)."""

    if not lake.has_dataset(*LINKS):
        return GraphState()
    links = lake.read_latest_pandas(*LINKS)
    registry = lake.read_latest_pandas(*REGISTRY) if lake.has_dataset(*REGISTRY) else None
    if registry is None:
        registry = pd.DataFrame(
            {"identity_id": links.identity_id.unique(), "created_at": "", "status": "active"}
        )
    identifiers = lake.read_latest_pandas(*IDENTIFIERS) if lake.has_dataset(*IDENTIFIERS) else None
    shared = lake.read_latest_pandas(*SHARED_IDENTIFIERS) if lake.has_dataset(*SHARED_IDENTIFIERS) else None
    return bootstrap_state(links, registry, identifiers, shared)


def _locate(location: LakeLike | str) -> tuple[StateStore, str | None, Callable[[], GraphState] | None]:
    """(state store, batch version the state must be based on, how to bootstrap it)."""
    if isinstance(location, str):
        return StateStore(location), None, None

    return (
        StateStore(location.path(*INCREMENTAL_GRAPH)),
        location.latest_version(*LINKS),
        lambda: bootstrap_from_lake(location),
    )


def load_state(location: LakeLike | str) -> GraphState:
    """The current graph: for a lake, rebuilt on the batch output whenever the batch re-ran."""
    states, base, bootstrap = _locate(location)
    return states.load(bootstrap, base)


# ---------------------------------------------------------------------- the entry point


def stitch_batch(
    store: IdentityStore,
    location: LakeLike | str,
    profile_records: pd.DataFrame | None,
    identify_events: pd.DataFrame | None,
    now: str | None = None,
    default_region: str = "US",
    user_id_source: str = USER_ID_SOURCE,
    tombstones: Tombstones | None = None,
) -> StitchResult:
    """Add one micro-batch of streamed profiles and identify events; write the changes.

    ``location`` is the lake (state under ``resolution/incremental_graph``, bootstrapped from
    the batch output) or a folder/URI holding the state alone. Profiles are applied first
    (merges they cause are recorded with reason ``profile_stream``), then identify events
    (``identify_event``). Replaying the same micro-batch changes nothing. Records and events
    carrying a value ``tombstones`` names are left out and counted (``erased_records``,
    ``erased_events``).
    """
    now = now or utc_timestamp()
    states, base, bootstrap = _locate(location)
    state = states.load(bootstrap, base)
    result = StitchResult()
    lookups = None
    batches: list[BatchInput] = []
    # A steward's split holds in the stream too: no edge may join the two records' identities.
    apart = tuple(
        (node_key(RECORD, d["record_id_l"]), node_key(RECORD, d["record_id_r"]))
        for d in store.match_decisions()
        if d["decision"] == "split"
    )
    if profile_records is not None and len(profile_records):
        nodes, edges, lookups, result.quarantined, result.erased_records = profile_graph(
            profile_records, default_region, tombstones
        )
        result.records = len(nodes)
        batches.append(BatchInput(state.version + 1, now, PROFILE_REASON, nodes, edges, apart))
    if identify_events is not None and len(identify_events) and tombstones:
        hit = erased_events(identify_events, tombstones, user_id_source)
        result.erased_events = int(hit.sum())
        identify_events = identify_events[~hit]
    if identify_events is not None and len(identify_events):
        edges = identify_graph(identify_events, user_id_source)
        result.identify_events = len(identify_events)
        empty = pd.DataFrame({"node": pd.Series(dtype=object), "source": pd.Series(dtype=object)})
        batches.append(
            BatchInput(state.version + 1 + len(batches), now, IDENTIFY_REASON, empty, edges, apart)
        )
    deltas: list[Delta] = [b.apply(state) for b in batches]
    if deltas:
        # The graph versions the batches become name the run: a replay of the same micro-batch
        # (same versions on the same batch base) records no new change.
        run_id = f"stitch-{base or 'local'}-v{batches[0].version}-{batches[-1].version}"
        result.changed = apply_delta(
            store, state, deltas, merged_at=now, extra_identifiers=lookups, run_id=run_id
        )
    for batch in batches:
        states.record(state, batch, base)
    result.versions = [b.version for b in batches]
    for d in deltas:
        result.new_nodes += d.new_nodes
        result.new_edges += d.new_edges
        result.blocked_edges += d.blocked_edges
        result.touched_nodes += d.touched_nodes
        fresh = (d.identities.created_at == now) & (d.identities.status == "active")
        result.new_identities += int(fresh.sum())
    result.merges = pd.concat([d.merges for d in deltas], ignore_index=True) if deltas else result.merges
    return result


# ---------------------------------------------------------------------- the asset check


def stitched_share(events: pd.DataFrame, resolver: Resolver, user_id_source: str = USER_ID_SOURCE) -> float:
    """Share of events whose anonymous_id, user_id or e-mail resolves to an identity.

    ``resolver(id_type, id_value)`` answers one identifier (``GraphState.resolve`` or
    :func:`store_resolver`); each distinct key is asked once.
    """
    if events.empty:
        return 0.0
    keys = event_keys(events, user_id_source)
    resolved = np.zeros(len(events), dtype=bool)
    cache: dict[str, bool] = {}
    for column in keys.columns:
        col = keys[column]
        for key in col.dropna().unique():
            if key not in cache:
                kind, _, value = key.partition(":")
                cache[key] = resolver(kind, value) is not None
        resolved |= np.fromiter((cache.get(k, False) for k in col), dtype=bool, count=len(col))
    return float(resolved.mean())


def store_resolver(store: IdentityStore) -> Resolver:
    """Resolve through the store's identifiers table; a value two identities share resolves nobody."""

    def resolve(id_type: str, value: str) -> str | None:
        ids = store.lookup(id_type, value)
        return ids[0] if len(ids) == 1 else None

    return resolve


def graph_resolver(state: GraphState) -> Resolver:
    return state.resolve
