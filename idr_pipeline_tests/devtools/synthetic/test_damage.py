"""Field damage: noisy, but (apart from deliberate garbage) still the same value underneath."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pytest

from idr_pipeline.devtools.synthetic import damage
from idr_pipeline.devtools.synthetic.people import EPOCH
from idr_pipeline.standardize.dates import parse_date


def _edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance (transposition counts as one edit)."""
    d = [[max(i, j) if not i * j else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@pytest.mark.parametrize("kind", [0, 1, 2, 3])
def test_typo_is_one_edit(kind: int) -> None:
    for pos in np.linspace(0, 0.99, 7):
        out = damage.typo("Katherine", kind, float(pos), "q")
        assert _edit_distance("Katherine", out) == 1, (kind, pos, out)
        assert out[0] == "K"


def test_every_phone_format_keeps_the_number() -> None:
    digits = np.array(["4155552671"] * 700, dtype=object)
    out = damage.phones(digits, np.random.default_rng(0), (1,) * len(damage.PHONE_FORMATS))
    kept = [re.sub(r"\D", "", p)[-10:] for p in out]
    assert sum(k == "4155552671" for k in kept) >= 690  # a few lost a digit on purpose
    assert {"(415) 555-2671", "415.555.2671", "+1 415 555 2671", "1-415-555-2671", "4155552671"} <= set(out)


def test_dob_formats_parse_back_to_the_true_date() -> None:
    true = np.array(["1985-03-07", "1999-12-31", "1960-11-02"] * 400, dtype="datetime64[D]")
    out = damage.format_dobs(true, np.random.default_rng(1), (1,) * len(damage.DOB_FORMATS))
    good = sum(
        parse_date(text, today=date(2025, 1, 1)) == t.astype(object)
        for text, t in zip(out, true, strict=True)
    )
    assert good >= 0.98 * len(true)
    assert any(re.fullmatch(r"\d{2} [A-Z][a-z]{2} \d{4}", s) for s in out)


def test_gmail_variant_is_the_same_mailbox() -> None:
    out = damage.gmail_variant("john.smith@gmail.com", dots=True, tag="shop", cut=0.2)
    local = out.split("@")[0]
    assert local.split("+")[0].replace(".", "") == "johnsmith" and local.endswith("+shop")


def test_street_abbreviations() -> None:
    streets = np.array(["1234 North Maple Street Apt 5"] * 300, dtype=object)
    out = set(damage.streets(streets, np.random.default_rng(2), abbreviate_rate=1.0))
    flat = " | ".join(out)
    for token in ("St", "N ", "#5", "Apartment"):
        assert token in flat, token


def test_timestamps_count_back_from_the_fixed_epoch() -> None:
    out = damage.timestamps(np.array([0, 86400]), EPOCH, "zulu")
    assert list(out) == ["2025-01-01T00:00:00Z", "2024-12-31T00:00:00Z"]
