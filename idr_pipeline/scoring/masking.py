"""Identifier values several people carry, blanked for comparison purposes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idr_pipeline.candidates.buckets import sorted_unique

# Identifier columns whose values households share; see mask_shared_identifiers.
SHARED_IDENTIFIER_COLUMNS = {
    "email_key": ("email", "email_key"),
    "phone": ("phone",),
    "ip_address": ("ip_address",),
}


def mask_shared_identifiers(profiles: pd.DataFrame, max_people: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blank identifier values that several people carry, for comparison purposes only.

    A landline, a family e-mail or a home IP agreeing between two records says "same household",
    not "same person"; Segment-style per-identifier limits treat such values as non-identifying.
    Blanked values score as missing (weight 0) instead of as strong agreement. Returns the
    masked frame and a report of what was masked.
    """
    out = profiles.copy()
    first = out.get("first_name", pd.Series(index=out.index, dtype=object)).fillna("")
    # Who carries a value: the first two letters of the first name, as codes computed per distinct
    # name. Distinct (value, name) code pairs are counted on integers, not grouped as strings.
    name_codes, names = pd.factorize(first)
    prefixes = pd.Series(names, dtype=object).str.lower().str[:2].to_numpy(dtype=object)
    prefix_codes, prefix_values = pd.factorize(np.append(prefixes, ""))
    named = prefix_codes[:-1][name_codes]
    named_present = named != prefix_codes[-1]  # the empty prefix is no name
    report = []
    for key, columns in SHARED_IDENTIFIER_COLUMNS.items():
        if key not in out.columns:
            continue
        values = out[key]
        value_codes, uniques = pd.factorize(values)
        present = (value_codes >= 0) & named_present
        pairs = sorted_unique(value_codes[present].astype(np.int64) * len(prefix_values) + named[present])
        people = np.bincount(pairs // len(prefix_values), minlength=len(uniques))  # '' is always there
        shared = set(uniques[people > max_people])
        if not shared:
            continue
        hit = values.isin(shared)
        for column in columns:
            if column in out.columns:
                out.loc[hit, column] = None
        report.append({"identifier": key, "shared_values": len(shared), "records_masked": int(hit.sum())})
    return out, pd.DataFrame(report, columns=["identifier", "shared_values", "records_masked"])
