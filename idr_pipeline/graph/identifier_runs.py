"""Per identifier value, in Arrow: how many people carry it, and the star edges it links.

The Spark job (``graph.edges``) shuffles the identifier occurrences once by value and sorts
each partition so that a value's carriers arrive as one run with the smallest record id first
(:data:`SORT_ORDER` after a hash of the value, see ``edges.link_identifiers``). Counting,
classifying and linking are then one pass over the run starts, where a Spark plan would
need a group-by, a join back to the occurrences and a window (and compute the occurrences
more than once). Pure functions of Arrow tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from idr_pipeline.core.sorted_runs import arrow_equal_values, arrow_run_starts, as_bools
from idr_pipeline.graph.blocklist import is_blocked
from idr_pipeline.scoring.person import PersonSignatures, people_per_value

VALUE_KEY = ["id_type", "id_value"]
#: Within a value, the order its carriers arrive in: together, the hub (smallest id) first.
SORT_ORDER = [*VALUE_KEY, "record_id"]
# Above this many records a value is a placeholder or a system default, whoever carries it.
MAX_RECORDS_PER_IDENTIFIER = 200
SHARED_COLUMNS = ["id_type", "id_value", "records", "blocked", "people", "conflict", "not_identity_reason"]
#: The carriers' person-level attributes each occurrence brings, to tell people apart.
#: (``person_email`` names a record without a given name, see ``scoring.person.person_key``.)
PERSON_COLUMNS = ["person_first", "person_last", "person_dob", "person_national_id", "person_email"]
EDGE_COLUMNS = ["src", "dst", "id_type", "id_value"]
#: The ASCII characters ``str.strip()`` removes (spelled out here: importing ``standardize`` for
#: them would cost each Spark Python worker half a second).
ASCII_WHITESPACE = "".join(c for c in map(chr, range(128)) if c.isspace())


def classify_runs(
    occurrences: pa.Table, max_people: int, blocklist: dict[str, set[str]]
) -> tuple[pa.Table, pa.Table]:
    """(shared, edges) for occurrences sorted by :data:`SORT_ORDER`, holding whole runs.

    ``shared``: one row per value that must not link, with why (:data:`SHARED_COLUMNS`).
    A placeholder on the blocklist never links; nor does a value on more than
    :data:`MAX_RECORDS_PER_IDENTIFIER` records, or one carried by more than ``max_people``
    people: carriers told apart by their person-level attributes (:data:`PERSON_COLUMNS`,
    judged by ``scoring.person``: a household landline, a family e-mail, a shared tablet, a
    parent's national id on a child's record), with the first conflict that told them apart.
    ``edges``: every other value on two or more records links them as a star from the smallest
    record id: n - 1 edges, not n².

    Arrow in and out: the strings are only compared, counted and taken, never turned into
    Python objects, which is what converting each batch to pandas spent most of its time on.
    """
    starts = arrow_run_starts(occurrences, VALUE_KEY)
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    records = np.diff(np.append(first, len(starts))).astype(np.int64)
    types, values, record_ids = (
        occurrences.column(c).combine_chunks() for c in ("id_type", "id_value", "record_id")
    )

    signatures = PersonSignatures.of(
        *(occurrences.column(c).to_numpy(zero_copy_only=False) for c in PERSON_COLUMNS)
    )
    people = np.zeros(len(first), dtype=np.int64)
    reasons: dict[int, str] = {}
    is_national_id = types.to_numpy(zero_copy_only=False) == "national_id"
    for national in (False, True):
        # National id values are judged on their carriers' other attributes.
        rows = is_national_id == national
        if not rows.any():
            continue
        counted, found = people_per_value(
            np.where(rows, group, -1), signatures, judge_national_id=not national
        )
        judged = np.unique(group[rows])
        people[judged] = counted[judged]
        reasons.update({v: r for v, r in found.items()})
    conflict = np.full(len(first), None, dtype=object)
    for value, reason in reasons.items():
        conflict[value] = reason
    blocked = blocked_values(types.take(first), values.take(first), blocklist)
    reason = np.full(len(first), None, dtype=object)
    crowded = np.flatnonzero(people > max_people)
    reason[crowded] = [f"shared_by_{p}_people" for p in people[crowded]]
    reason[records > MAX_RECORDS_PER_IDENTIFIER] = "too_many_records"
    reason[blocked] = "blocklisted"
    refused = ~pd.isna(reason)
    kept = first[refused]
    shared = pa.table(
        {
            "id_type": types.take(kept),
            "id_value": values.take(kept),
            "records": records[refused],
            "blocked": blocked[refused].astype(np.int32),
            "people": people[refused],
            "conflict": pa.array(conflict[refused], pa.string()),
            "not_identity_reason": pa.array(reason[refused], pa.string()),
        }
    )
    rows, hubs = _star_edges(starts, group, first[group], ~refused & (records > 1), record_ids)
    edges = pa.table(
        {
            "src": record_ids.take(hubs),
            "dst": record_ids.take(rows),
            "id_type": types.take(rows),
            "id_value": values.take(rows),
        }
    )
    return shared, edges


def _star_edges(
    starts: np.ndarray, group: np.ndarray, hub: np.ndarray, linking: np.ndarray, record_ids: pa.Array
) -> tuple[np.ndarray, np.ndarray]:
    """(row, hub row) of each edge: every row of a linking group but its first, once per record id.

    A record listed twice under one value (the clean profiles hold one row per record id, so
    only defensively) gives one edge, and none to itself.
    """
    rows = len(starts)
    take = linking[group] & ~starts
    if rows > 1:
        take[1:] &= ~arrow_equal_values(record_ids.slice(1), record_ids.slice(0, rows - 1))
    candidates = np.flatnonzero(take)
    to_other = ~arrow_equal_values(record_ids.take(candidates), record_ids.take(hub[candidates]))
    edge_rows = candidates[to_other]
    return edge_rows, hub[edge_rows]


def blocked_values(types: pa.Array, values: pa.Array, blocklist: dict[str, set[str]]) -> np.ndarray:
    """:func:`is_blocked` of each (type, value), element-wise, with the same answers.

    The rule normalizes with ``str.strip().lower()`` and, for phones, keeps ``str.isdigit``
    characters. On ASCII strings those are exactly an ASCII trim of the characters
    ``str.isspace`` accepts, ``ascii_lower`` and the digits 0-9, which Arrow computes without
    building a Python string per value (calling the rule once per distinct value would
    dominate the linking step's Python time). Anything else (Unicode,
    whose case folding and digits differ between engines, or a missing value) goes through
    :func:`is_blocked` itself, so there stays one definition of "placeholder".
    """
    blocked = np.zeros(len(values), dtype=bool)
    fast = as_bools(pc.fill_null(pc.string_is_ascii(values), False))
    normal = pc.ascii_lower(pc.ascii_trim(values, ASCII_WHITESPACE))
    blocked |= _member(normal, blocklist.get("any", set()))
    for id_type in pc.unique(types).drop_null().to_pylist():
        rows = np.flatnonzero(fast & as_bools(pc.fill_null(pc.equal(types, id_type), False)))
        if id_type == "phone":
            blocked[rows] |= _member(
                _national_digits(normal.take(rows)), blocklist.get("phone_digits", set())
            )
        else:
            blocked[rows] |= _member(normal.take(rows), blocklist.get(id_type, set()))
    slow = np.flatnonzero(~fast)
    for i, id_type, value in zip(
        slow, types.take(slow).to_pylist(), values.take(slow).to_pylist(), strict=True
    ):
        blocked[i] = is_blocked(id_type, value, blocklist)
    return blocked


def _national_digits(phones: pa.Array) -> pa.Array:
    """``blocklist.phone_digits`` of ASCII phones: their digits, a NANP number's leading 1 dropped.

    Most are ``+`` and digits (E.164) and need only the ``+`` dropped; a regex keeps the
    digits of the rest only (over every value it would dominate the step's Python time).
    """
    rest = pc.if_else(pc.starts_with(phones, "+"), pc.utf8_slice_codeunits(phones, 1), phones)
    other = pc.invert(pc.fill_null(pc.ascii_is_decimal(rest), False))
    digits = pc.replace_with_mask(rest, other, pc.replace_substring_regex(phones.filter(other), "[^0-9]", ""))
    national = pc.and_(pc.equal(pc.utf8_length(digits), 11), pc.starts_with(digits, "1"))
    return pc.if_else(national, pc.utf8_slice_codeunits(digits, 1), digits)


def _member(values: pa.Array, members: set[str]) -> np.ndarray:
    """``value in members`` element-wise (False for a missing value)."""
    if not members:
        return np.zeros(len(values), dtype=bool)
    return as_bools(pc.fill_null(pc.is_in(values, pa.array(sorted(members), pa.string())), False))
