"""Exact blocking keys: which rule proposes which pair, and what the caps skip."""

from __future__ import annotations

import pandas as pd

from idr_pipeline.candidates.deterministic import DEFAULT_RULES, BlockingRule, deterministic_pairs

COLUMNS = [
    "record_id", "source", "source_customer_id", "first_name", "last_name", "email_key", "phone",
    "national_id", "device_id", "postcode", "dob",
]  # fmt: skip


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows])


def _pairs(result) -> set[tuple[str, str]]:
    return set(zip(result.pairs.record_id_l, result.pairs.record_id_r, strict=True))


def _rule(name: str) -> tuple[BlockingRule, ...]:
    return tuple(r for r in DEFAULT_RULES if r.name == name)


def test_each_rule_finds_its_pair():
    cases = {
        "email_key": ({"email_key": "jo@x.com"}, {"email_key": "jo@x.com"}),
        "phone": ({"phone": "+12025550101"}, {"phone": "+12025550101"}),
        "national_id": ({"national_id": "123-45-6789"}, {"national_id": "123-45-6789"}),
        "device_id": ({"device_id": "dev-1"}, {"device_id": "dev-1"}),
        "source_customer": (
            {"source": "crm", "source_customer_id": "77"},
            {"source": "crm", "source_customer_id": "77"},
        ),
        "last_name_dob_year": (
            {"last_name": "Perry", "dob": "1985-03-12"},
            {"last_name": "perry", "dob": "1985-12-03"},
        ),
        "first_initial_postcode": (
            {"first_name": "Jon", "postcode": "06510"},
            {"first_name": "Jonathan", "postcode": "06510"},
        ),
        "dob_first_initial": (
            {"first_name": "Jon", "dob": "1985-03-12"},
            {"first_name": "jonny", "dob": "1985-03-12"},
        ),
    }
    for name, (left, right) in cases.items():
        df = _frame([{"record_id": "r2", **left}, {"record_id": "r1", **right}])
        result = deterministic_pairs(df)
        assert _pairs(result) == {("r1", "r2")}, name
        counts = result.counts.set_index("rule")
        assert counts.loc[name, "pairs"] == 1, name


def test_rules_do_not_fire_on_partial_or_different_keys():
    df = _frame(
        [
            {"record_id": "a", "source": "crm", "last_name": "Perry", "dob": "1985", "first_name": "J"},
            {"record_id": "b", "source": "crm", "last_name": "Perry", "dob": "1985", "first_name": "K"},
            {"record_id": "c", "source": "pos", "source_customer_id": "1", "postcode": "06510"},
            {"record_id": "d", "source": "crm", "source_customer_id": "1", "postcode": "06510"},
        ]
    )
    # Partial dates don't make a birth year; a missing first name doesn't make an initial;
    # the same customer id in two sources is two customers.
    assert _pairs(deterministic_pairs(df)) == set()


def test_union_counts_and_new_pairs():
    df = _frame(
        [
            {"record_id": "a", "email_key": "e", "phone": "p"},
            {"record_id": "b", "email_key": "e", "phone": "p"},
            {"record_id": "c", "phone": "p"},
        ]
    )
    result = deterministic_pairs(df)
    assert _pairs(result) == {("a", "b"), ("a", "c"), ("b", "c")}
    counts = result.counts.set_index("rule")
    assert counts.loc["email_key", ["pairs", "new_pairs"]].tolist() == [1, 1]
    assert counts.loc["phone", ["pairs", "new_pairs", "buckets", "keyed_records"]].tolist() == [3, 2, 1, 3]
    assert (result.pairs.record_id_l < result.pairs.record_id_r).all()


def test_bucket_cap_skips_and_counts():
    rows = [{"record_id": f"r{i:02d}", "phone": "+10000000000"} for i in range(6)]
    rows += [{"record_id": "x1", "phone": "+12025550101"}, {"record_id": "x2", "phone": "+12025550101"}]
    rule = BlockingRule("phone", "test", _rule("phone")[0].key, max_bucket=5)
    result = deterministic_pairs(_frame(rows), (rule,))
    assert _pairs(result) == {("x1", "x2")}
    row = result.counts.iloc[0]
    assert (row.skipped_buckets, row.skipped_records, row.largest_bucket) == (1, 6, 6)


def test_every_rule_documents_its_purpose():
    assert all(len(r.purpose) > 20 and r.max_bucket > 1 for r in DEFAULT_RULES)
    assert len({r.name for r in DEFAULT_RULES}) == len(DEFAULT_RULES)
