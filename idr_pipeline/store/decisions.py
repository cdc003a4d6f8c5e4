"""Reading the stewards' forced links and splits the clustering must honor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from idr_pipeline.store.factory import open_store, parse_store_url

DECISION_COLUMNS = ["record_id_l", "record_id_r", "decision"]


def load_decisions(store_url: str) -> pd.DataFrame:
    """The store's match decisions as ``DECISION_COLUMNS``; none when the embedded store file
    does not exist yet. Any other failure propagates: clustering without them would undo a
    steward's decision."""
    parsed = parse_store_url(store_url)
    if parsed.backend == "sqlite" and (parsed.path == ":memory:" or not Path(parsed.path).exists()):
        return pd.DataFrame(columns=DECISION_COLUMNS)
    with open_store(store_url) as store:
        store.ensure_schema()
        rows = store.match_decisions()
    return pd.DataFrame(rows, columns=[*DECISION_COLUMNS, "reason", "decided_by", "decided_at"])[
        DECISION_COLUMNS
    ]
