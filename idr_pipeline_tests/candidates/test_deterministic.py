"""Exact blocking keys: which rule proposes which pair, and what the caps skip."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from idr_pipeline.candidates.deterministic import (
    DEFAULT_RULES,
    BlockingRule,
    _in_sorted,
    deterministic_pairs,
    merge_disjoint_sorted,
)

COLUMNS = [
    "record_id", "source", "source_customer_id", "first_name", "last_name", "email_key", "phone",
    "national_id", "device_id", "anonymous_id", "street", "postcode", "dob",
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
        "anonymous_id": ({"anonymous_id": "anon-1"}, {"anonymous_id": "anon-1"}),
        "dob": ({"dob": "1985-03-12"}, {"dob": "1985-03-12"}),
        "dob_given_initial": (
            {"first_name": "Bob", "last_name": "Perry", "dob": "1985-03-12"},
            {"first_name": "Robert", "last_name": "Smith", "dob": "1985-03-12"},
        ),
        "dob_surname_initial": (
            {"first_name": "Zoe", "last_name": "Perry", "dob": "1985-03-12"},
            {"first_name": "Mia", "last_name": "Parry", "dob": "1985-03-12"},
        ),
        "dob_swapped_initials": (
            {"first_name": "Caitlin", "last_name": "Mason", "dob": "1985-03-12"},
            {"first_name": "Mason", "last_name": "Caitlin", "dob": "1985-03-12"},
        ),
        "dob_postcode": (
            {"first_name": "Zoe", "last_name": "Perry", "dob": "1985-03-12", "postcode": "06510"},
            {"first_name": "Mia", "last_name": "Smith", "dob": "1985-03-12", "postcode": "065 10"},
        ),
        "street": ({"street": "12  Oak St"}, {"street": "12 oak st"}),
        "surname_postcode": (
            {"first_name": "Cathy", "last_name": "Ryan", "postcode": "06510"},
            {"first_name": "Kate", "last_name": "ryan", "postcode": "065 10"},
        ),
        "given_name_postcode": (
            {"first_name": "Bob", "last_name": "Perry", "postcode": "06510"},
            {"first_name": "Robert", "last_name": "Smith", "postcode": "06510"},
        ),
        "full_name": (
            {"first_name": "Sara", "last_name": "O'Neill"},
            {"email_key": "saraoneill77@gmail.com"},
        ),
        "email_initial_surname": (
            {"first_name": "Jon", "last_name": "Perry"},
            {"email_key": "jperry@x.com"},
        ),
    }
    assert set(cases) == {r.name for r in DEFAULT_RULES}
    predicts = {r.name: r.predicts for r in DEFAULT_RULES}
    for name, (left, right) in cases.items():
        df = _frame([{"record_id": "r2", **left}, {"record_id": "r1", **right}])
        result = deterministic_pairs(df)
        # A training-only rule's pair is in the EM pool, not among the pairs to score.
        assert _pairs(result) == ({("r1", "r2")} if predicts[name] else set()), name
        assert len(result.training_codes) == 1, name
        counts = result.counts.set_index("rule")
        assert counts.loc[name, "pairs"] == 1, name


def test_training_only_rules_feed_the_pool_not_the_pairs():
    df = _frame(
        [
            {"record_id": "a", "first_name": "Ann", "last_name": "Perry", "dob": "1985-03-12"},
            {"record_id": "b", "first_name": "Zoe", "last_name": "Smith", "dob": "1985-03-12"},
            {"record_id": "c", "first_name": "Anna", "last_name": "Moss", "dob": "1985-03-12"},
        ]
    )
    result = deterministic_pairs(df)
    # Same birth date: all three pairs train the 'exact dob' session; only the Ann/Anna pair,
    # which shares an initial too, is scored.
    assert _pairs(result) == {("a", "c")}
    assert len(result.training_codes) == 3
    assert set(result.codes) <= set(result.training_codes)
    assert not next(r for r in DEFAULT_RULES if r.name == "dob").predicts


def test_rules_do_not_fire_on_partial_or_different_keys():
    df = _frame(
        [
            {"record_id": "a", "source": "crm", "dob": "1985"},
            {"record_id": "b", "source": "crm", "dob": "1985"},
            {"record_id": "c", "source": "pos", "source_customer_id": "1", "postcode": "06510"},
            {"record_id": "d", "source": "crm", "source_customer_id": "1", "postcode": "06510"},
        ]
    )
    # Partial dates don't make a birth date; the same customer id in two sources is two
    # customers; a postcode alone is not a key.
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


def test_full_name_reads_handles_and_nicknames():
    df = _frame(
        [
            {"record_id": "a", "first_name": "Robert", "last_name": "Smith Jr"},
            {"record_id": "b", "first_name": "Bob", "last_name": "Smith"},
            {"record_id": "c", "email_key": "smith.robert@x.com"},
            {"record_id": "d", "email_key": "bobsmith@y.com"},
            # Unknown words are not split into names, and a short handle is no name.
            {"record_id": "e", "email_key": "beachriver290@gmail.com"},
            {"record_id": "f", "first_name": "Beach", "last_name": "Rivera"},
            {"record_id": "g", "email_key": "b.s@z.com"},
        ]
    )
    pairs = _pairs(deterministic_pairs(df, _rule("full_name")))
    people = {"a", "b", "c", "d"}
    assert pairs == {(x, y) for x in people for y in people if x < y}


def test_email_initial_pairs_only_across_sides():
    df = _frame(
        [
            {"record_id": "a", "first_name": "Jon", "last_name": "Perry"},
            {"record_id": "b", "first_name": "Jane", "last_name": "Perry"},
            {"record_id": "c", "email_key": "jperry@x.com"},
            {"record_id": "d", "email_key": "j.perry12@y.com"},
        ]
    )
    result = deterministic_pairs(df, _rule("email_initial_surname"))
    # Handle to name only: J. Perry with J. Perry and jperry with j.perry are not this rule's.
    assert _pairs(result) == {("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")}
    assert result.counts.loc[0, "keyed_records"] == 2


def test_cross_bucket_cap_skips_the_common_side():
    rows = [{"record_id": f"n{i:02d}", "first_name": "Jo", "last_name": "Lee"} for i in range(6)]
    rows += [{"record_id": "h1", "email_key": "jlee@x.com"}]
    rule = BlockingRule(
        "initial",
        "test",
        _rule("email_initial_surname")[0].key,
        5,
        True,
        _rule("email_initial_surname")[0].partner_key,
    )
    result = deterministic_pairs(_frame(rows), (rule,))
    assert _pairs(result) == set()
    assert result.counts.loc[0, "skipped_buckets"] == 1


def test_training_sessions_are_blocking_conditions():
    """Every EM session condition must put its pairs in the candidates (see TrainingSession)."""
    from idr_pipeline.matching.fellegi_sunter import DEFAULT_SESSIONS

    implied = {"dob": "dob", "address": "street", "email": "email_key", "phone": "phone",
               "national_id": "national_id", "device_id": "device_id"}  # fmt: skip
    names = {r.name for r in DEFAULT_RULES}
    for session in DEFAULT_SESSIONS:
        assert implied[session.comparison] in names, session


def test_rules_keyed_together_give_the_pairs_of_each_rule_alone():
    """deterministic_pairs computes shared key parts (surname, given name, birth date, handle)
    once for all rules; each rule must still propose exactly what it does on its own."""
    df = _frame(
        [
            {
                "record_id": "a",
                "first_name": "Bob",
                "last_name": "Perry Jr",
                "dob": "1985-03-12",
                "postcode": "06510",
            },
            {"record_id": "b", "first_name": "Robert", "last_name": "perry", "dob": "1985-03-12"},
            {"record_id": "c", "first_name": "Perry", "last_name": "Robert", "dob": "1985-03-12"},
            {"record_id": "d", "email_key": "rperry@x.com", "postcode": "06510"},
            {"record_id": "e", "email_key": "robert.perry@x.com", "dob": "1985-03-12"},
            {"record_id": "f", "first_name": "Ann", "last_name": "Perry", "postcode": "065 10"},
        ]
    )
    together = deterministic_pairs(df).counts.set_index("rule")["pairs"]
    alone = {r.name: int(deterministic_pairs(df, (r,)).counts["pairs"].iloc[0]) for r in DEFAULT_RULES}
    assert together.to_dict() == alone
    assert sum(v > 0 for v in alone.values()) >= 7  # the frame exercises the name and date rules


@given(st.lists(st.sets(st.integers(0, 10_000), max_size=60), min_size=1, max_size=8))
def test_the_running_unions_equal_sorting_every_rules_pairs_together(rules_codes):
    """Each rule's codes are looked up in the union so far and its new ones merged in; the
    result must be what sorting all the rules' codes at once gives, with no code twice."""
    union = np.zeros(0, dtype=np.int64)
    news = []
    for codes in rules_codes:
        code = np.array(sorted(codes), dtype=np.int64)
        new = code[~_in_sorted(code, union)]
        news.append(set(new.tolist()))
        union = merge_disjoint_sorted(union, new)
    everything = set().union(*rules_codes)
    assert union.tolist() == sorted(everything)
    assert sum(len(n) for n in news) == len(everything)
    for k, new in enumerate(news):
        assert new == rules_codes[k] - set().union(set(), *rules_codes[:k])
