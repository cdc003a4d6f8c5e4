"""Identifier values several people carry, blanked for comparison purposes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idr_pipeline.scoring.person import PersonSignatures, people_per_value

# Identifier columns whose values a household shares, each with the columns blanked with it;
# see mask_shared_identifiers. A national id is not among them: a household does not share one,
# and the model weighs an agreeing national id against whatever else disagrees (the
# deterministic edges still judge it by its carriers, see graph.identifier_runs).
SHARED_IDENTIFIER_COLUMNS = {
    "email_key": ("email", "email_key"),
    "phone": ("phone",),
    "ip_address": ("ip_address",),
    "device_id": ("device_id",),
}
REPORT_COLUMNS = ["identifier", "shared_values", "records_masked"]


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    return frame[name].to_numpy(dtype=object)


def mask_shared_identifiers(profiles: pd.DataFrame, max_people: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blank identifier values that more than ``max_people`` people carry, for comparison only.

    Whether a value is shared is judged from the data, value by value: its carriers are told
    apart by their person-level attributes (``scoring.person``: given name, date of birth,
    suffix, national id, forgiving typos, nicknames and initials). A landline, a family e-mail,
    a home IP or a shared tablet agreeing between two records then says "same household", not
    "same person": blanked, it scores as missing (weight 0) instead of as strong agreement.
    Returns the masked frame and a report of what was masked.
    """
    out = profiles.copy()
    signatures = PersonSignatures.of(
        *(_column(out, c) for c in ("first_name", "last_name", "dob", "national_id", "email"))
    )
    report = []
    for key, columns in SHARED_IDENTIFIER_COLUMNS.items():
        if key not in out.columns:
            continue
        values = out[key]
        value_codes, uniques = pd.factorize(values)
        people, _reasons = people_per_value(value_codes, signatures)
        shared = set(uniques[people > max_people])
        if not shared:
            continue
        hit = values.isin(shared)
        for column in columns:
            if column in out.columns:
                out.loc[hit, column] = None
        report.append({"identifier": key, "shared_values": len(shared), "records_masked": int(hit.sum())})
    return out, pd.DataFrame(report, columns=REPORT_COLUMNS)
