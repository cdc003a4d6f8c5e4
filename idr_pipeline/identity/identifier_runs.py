"""Per identifier value, in pandas: how many people carry it, and the star edges it links.

The Spark job (``identity.edges``) shuffles the identifier occurrences once by value and sorts
each partition by (id_type, id_value, record_id), so a value's carriers arrive as one run with
the smallest record id first. Counting, classifying and linking are then one pass over the run
starts, where the Spark plan used to need a group-by, a join back to the occurrences and a
window (and computed the occurrences more than once). Pure functions of pandas frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from idr_pipeline.identity.blocklist import is_blocked
from idr_pipeline.sorted_runs import equal_values, run_starts

VALUE_KEY = ["id_type", "id_value"]
#: The order a partition arrives in: a value's carriers together, the hub (smallest id) first.
SORT_ORDER = [*VALUE_KEY, "record_id"]
# Above this many records a value is a placeholder or a system default, whoever carries it.
MAX_RECORDS_PER_IDENTIFIER = 200
SHARED_COLUMNS = [
    "id_type", "id_value", "records", "distinct_names", "distinct_dobs", "blocked", "people", "not_identity_reason",
]  # fmt: skip
EDGE_COLUMNS = ["src", "dst", "id_type", "id_value"]


def classify_runs(
    occurrences: pd.DataFrame, max_people: int, blocklist: dict[str, set[str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(shared, edges) for occurrences sorted by :data:`SORT_ORDER`, holding whole runs.

    ``shared``: one row per value that must not link, with why (:data:`SHARED_COLUMNS`).
    A placeholder on the blocklist never links; nor does a value on more than
    :data:`MAX_RECORDS_PER_IDENTIFIER` records, or one carried by more than ``max_people``
    people, counted as distinct first-name prefixes or distinct dates of birth, whichever is
    higher (a household landline). ``edges``: every other value on two or more records links
    them as a star from the smallest record id: n - 1 edges, not n².
    """
    starts = run_starts(occurrences, VALUE_KEY)
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    groups = len(first)
    types = occurrences["id_type"].to_numpy(dtype=object)
    values = occurrences["id_value"].to_numpy(dtype=object)
    record_ids = occurrences["record_id"].to_numpy(dtype=object)

    records = np.bincount(group, minlength=groups).astype(np.int64)
    names = _distinct_per_group(group, occurrences["person_name"], groups)
    dobs = _distinct_per_group(group, occurrences["person_dob"], groups)
    people = np.maximum(names, dobs)
    # The blocklist rule runs once per distinct value through the same pure function the API
    # uses, so there is one definition of "placeholder".
    blocked = np.fromiter(
        (is_blocked(t, v, blocklist) for t, v in zip(types[first], values[first], strict=True)),
        dtype=bool,
        count=groups,
    )
    reason = np.full(groups, None, dtype=object)
    crowded = np.flatnonzero(people > max_people)
    reason[crowded] = [f"shared_by_{p}_people" for p in people[crowded]]
    reason[records > MAX_RECORDS_PER_IDENTIFIER] = "too_many_records"
    reason[blocked] = "blocklisted"
    refused = ~pd.isna(reason)
    shared = pd.DataFrame(
        {
            "id_type": types[first][refused],
            "id_value": values[first][refused],
            "records": records[refused],
            "distinct_names": names[refused],
            "distinct_dobs": dobs[refused],
            "blocked": blocked[refused].astype(np.int32),
            "people": people[refused],
            "not_identity_reason": reason[refused],
        }
    )

    hub = record_ids[first][group]
    # A record listed twice under one value (the clean profiles hold one row per record id, so
    # only defensively) gives one edge.
    repeated = np.append(False, ~starts[1:] & equal_values(record_ids[1:], record_ids[:-1]))
    linking = ~refused & (records > 1)
    take = linking[group] & ~starts & ~repeated & (record_ids != hub)
    edges = pd.DataFrame(
        {"src": hub[take], "dst": record_ids[take], "id_type": types[take], "id_value": values[take]}
    )
    return shared, edges


def _distinct_per_group(group: np.ndarray, column: pd.Series, groups: int) -> np.ndarray:
    """Distinct non-missing values of ``column`` in each group."""
    codes, uniques = pd.factorize(column)
    present = codes >= 0
    width = max(len(uniques), 1)
    pairs = np.unique(group[present].astype(np.int64) * width + codes[present])
    return np.bincount(pairs // width, minlength=groups).astype(np.int64)
