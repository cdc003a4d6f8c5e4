"""Stable identity ids across runs.

Connected components are recomputed from scratch each run, and their natural label (the
smallest record id) changes whenever records arrive. Downstream systems hold on to identity
ids, so ids are carried over from the previous run instead:

* a component containing records of exactly one previous identity keeps that id;
* a component joining several previous identities keeps the oldest (then smallest) id, and
  the others are recorded as merged into it;
* an identity whose records were split keeps its id in the component holding most of them;
* anything else gets a new id derived from its smallest record id, so a fresh rebuild of the
  same data produces the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ID_PREFIX = "idr_"


def new_identity_id(founding_record: str, taken: set[str]) -> str:
    salt = 0
    while True:
        key = founding_record if salt == 0 else f"{founding_record}#{salt}"
        candidate = ID_PREFIX + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
        if candidate not in taken:
            return candidate
        salt += 1


def new_identity_ids(founding_records: Iterable[str], known_ids: set[str]) -> list[str]:
    """``new_identity_id`` for each founding record in turn, each new id taken before the next.

    An id is salted only when it collides, which 64-bit hashes all but never do: so all ids are
    hashed at once (a first run hashes every component, slow one by one),
    and only if two of them collide, or one is already known, are they issued one by one.
    """
    founding = list(founding_records)
    sha1 = hashlib.sha1
    ids = [ID_PREFIX + sha1(record.encode("utf-8")).hexdigest()[:16] for record in founding]
    distinct = set(ids)
    if len(distinct) == len(ids) and distinct.isdisjoint(known_ids):
        return ids
    taken = set(known_ids)
    issued = []
    for record in founding:
        nid = new_identity_id(record, taken)
        taken.add(nid)
        issued.append(nid)
    return issued


def _sorted(frame: pd.DataFrame, keys: list[tuple[str, str]]) -> pd.DataFrame:
    """``frame.sort_values`` on several keys, sorted by Arrow.

    pandas sorts object columns by factorizing each key and sorting its distinct values in
    Python, slow on the hundreds of thousands of overlaps of a large re-run. Both
    sorts are stable and put missing values last, and Arrow orders UTF-8 strings by code point,
    as Python orders ``str``; columns Arrow cannot take are sorted by pandas.
    """
    names = [name for name, _ in keys]
    if frame.empty:
        return frame.copy()
    try:
        table = pa.Table.from_pandas(frame[names], preserve_index=False)
        order = pc.sort_indices(table, sort_keys=[(name, how, "at_end") for name, how in keys])
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return frame.sort_values(names, ascending=[o == "ascending" for _, o in keys], kind="stable")
    return frame.take(order.to_numpy())


@dataclass
class Assignment:
    # component -> identity_id, created_at
    components: pd.DataFrame
    # merged_id, survivor_id, reason
    merges: pd.DataFrame


def assign_identity_ids(
    components: pd.DataFrame, overlaps: pd.DataFrame, known_ids: set[str], now: str
) -> Assignment:
    """Map this run's components onto identity ids.

    components: columns component (smallest record id); one row per component.
    overlaps:   component, identity_id, created_at, records — how many of the component's
                records belonged to each previous (active) identity.
    known_ids:  every id ever issued (active or merged), so a new id never reuses one.
    """
    # 1. Each previous identity lives on in at most one component: the one holding most of
    #    its records (ties to the smaller component label, so the choice is deterministic).
    owner = _sorted(
        overlaps, [("identity_id", "ascending"), ("records", "descending"), ("component", "ascending")]
    ).drop_duplicates("identity_id")
    # 2. Within a component, the oldest owned identity survives; the others merge into it.
    owner = _sorted(
        owner, [("component", "ascending"), ("created_at", "ascending"), ("identity_id", "ascending")]
    )
    survivors = owner.drop_duplicates("component")[["component", "identity_id", "created_at"]]
    merged = owner[~owner.identity_id.isin(survivors.identity_id)].merge(
        survivors.rename(columns={"identity_id": "survivor_id"})[["component", "survivor_id"]], on="component"
    )
    merges = pd.DataFrame(
        {
            "merged_id": merged.identity_id.to_numpy(),
            "survivor_id": merged.survivor_id.to_numpy(),
            "reason": "components_joined",
        }
    )
    # 3. Components with no surviving previous identity get a fresh, deterministic id.
    fresh = components[~components.component.isin(survivors.component)].sort_values("component")
    new_ids = new_identity_ids(fresh.component, known_ids)
    fresh_rows = pd.DataFrame(
        {"component": fresh.component.to_numpy(), "identity_id": new_ids, "created_at": now}
    )
    out = pd.concat([survivors, fresh_rows], ignore_index=True)
    return Assignment(components=out.reset_index(drop=True), merges=merges.reset_index(drop=True))
