"""Exact blocking keys: which rule proposes which pair, and what the caps skip."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from idr_pipeline.candidates.deterministic import (
    DEFAULT_RULES,
    KEY_SEPARATOR,
    BlockingRule,
    _Coded,
    _combined,
    _in_sorted,
    _rule_codes,
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
    from idr_pipeline.scoring.fellegi_sunter import DEFAULT_SESSIONS

    implied = {"dob": "dob", "address": "street", "email": "email_key", "phone": "phone",
               "national_id": "national_id", "device_id": "device_id", "first_name": "full_name"}  # fmt: skip
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


def _coded(values: list[str | None]) -> _Coded:
    codes, labels = pd.factorize(pd.Series(values, dtype=object))
    return _Coded(codes.astype(np.int64), np.asarray(labels, dtype=object))


def test_combined_codes_are_tuple_equality_not_concatenation():
    a = _coded(["ab", "a", "ab", None, "é", "é", "x"])
    b = _coded(["c", "bc", "c", "c", "ß", "ß", None])
    code = _combined((a, b))
    # ('ab', 'c') twice share a key; ('a', 'bc') would equal it concatenated without a separator
    assert code[0] == code[2] and code[0] != code[1]
    assert code[4] == code[5] and len({code[0], code[1], code[4]}) == 3
    assert (code[[3, 6]] == -1).all()  # a missing part leaves the row unkeyed


def test_combined_codes_renumber_before_overflowing():
    # Only the label counts set the multipliers: stand-ins for huge vocabularies.
    huge = range(2**40)
    parts = tuple(
        _Coded(np.array(c, dtype=np.int64), huge) for c in ([0, 0, 5, -1], [7, 7, 7, 1], [3, 4, 3, 2])
    )
    code = _combined(parts)
    assert code[0] != code[1] and code[0] != code[2] and code[3] == -1 and (code[:3] >= 0).all()
    assert len(set(code[:3].tolist())) == 3


def _awkward_frame() -> pd.DataFrame:
    """Missing and blank values, Unicode, case and space variants, and parts that run together."""
    rows = [
            {"record_id": "a", "source": "crm", "source_customer_id": "ab", "first_name": "Zoë",
             "last_name": "Perry Jr", "email_key": "Bob.Smith@x.com", "phone": "+1", "street": "1  Oak St",
             "postcode": "AB-1", "dob": "1985-03-12"},
            {"record_id": "b", "source": "crmab", "source_customer_id": "", "first_name": "zoë ",
             "last_name": "perry", "email": "bob.smith+tag@y.com", "street": "1 oak st", "postcode": "ab1",
             "dob": "1985-03-12"},
            {"record_id": "c", "source": "cr", "source_customer_id": "mab", "first_name": "Bob",
             "last_name": "Smith", "email_key": "jperry@x.com", "postcode": "ab 1", "dob": "1985-03-1"},
            {"record_id": "d", "source": "crm", "source_customer_id": "ab", "first_name": "  ",
             "last_name": "Ünal", "email_key": "zoeperry@z.com", "phone": "+1", "postcode": "ÅB1",
             "dob": "1985-03-12"},
            {"record_id": "e", "first_name": "Robert", "last_name": "Smith", "email": "r.smith@q.com",
             "postcode": "åb1", "dob": "1985-03-12"},
            {"record_id": "f", "first_name": "Perry", "last_name": "Zoe", "email_key": "j.perry@w.com",
             "dob": "1985-03-12", "street": "   "},
    ]  # fmt: skip
    return pd.DataFrame([{c: r.get(c) for c in [*COLUMNS, "email"]} for r in rows])


def _as_strings(rule: BlockingRule) -> BlockingRule:
    """The rule with its keys given only as strings, so deterministic_pairs factorizes them."""
    partner = rule.partner_key
    return BlockingRule(
        rule.name,
        rule.purpose,
        lambda df: rule.key(df),
        rule.max_bucket,
        rule.multi_key,
        None if partner is None else (lambda df: partner(df)),
        rule.predicts,
    )


def test_integer_keys_group_rows_as_the_key_strings_do():
    """Each rule's integer-coded keys must pair exactly the rows its key strings pair."""
    df = _awkward_frame()
    for rule in DEFAULT_RULES:
        coded = deterministic_pairs(df, (rule,))
        strings = deterministic_pairs(df, (_as_strings(rule),))
        assert coded.training_codes.tolist() == strings.training_codes.tolist(), rule.name
        assert coded.counts.drop(columns="seconds").equals(strings.counts.drop(columns="seconds")), rule.name
        (pos, codes), partner = _rule_codes(rule, df)
        keys = rule.key(df)
        # one code per distinct key string, row by row
        as_text = keys.to_numpy(dtype=object)[pos] if not rule.multi_key else keys.to_numpy(dtype=object)
        assert (
            len(set(zip(codes.tolist(), as_text, strict=True)))
            == len(set(as_text))
            == len(set(codes.tolist()))
        )
        if partner is not None:
            both = np.concatenate([codes, partner[1]])
            texts = np.concatenate([as_text, rule.partner_key(df).dropna().to_numpy(dtype=object)])
            assert len(set(zip(both.tolist(), texts, strict=True))) == len(set(texts)), rule.name
    assert len(deterministic_pairs(df).training_codes) > 5  # the frame does pair rows


def test_key_strings_spell_the_normalized_parts():
    df = _awkward_frame()
    key = {r.name: r.key(df) for r in DEFAULT_RULES}
    assert key["source_customer"].tolist()[:3] == [f"crm{KEY_SEPARATOR}ab", pd.NA, f"cr{KEY_SEPARATOR}mab"]
    assert key["surname_postcode"].iloc[0] == f"perry{KEY_SEPARATOR}ab1" == key["surname_postcode"].iloc[1]
    assert key["given_name_postcode"].iloc[3] is pd.NA  # a blank first name is missing
    assert key["dob_postcode"].iloc[3] == f"1985-03-12{KEY_SEPARATOR}åb1" == key["dob_postcode"].iloc[4]
    assert key["street"].tolist()[0:2] == ["1 oak st", "1 oak st"] and key["street"].iloc[5] is pd.NA
    # Row b has a name, and a raw e-mail but no match key: its handle is read as well.
    row_b = set(key["full_name"][key["full_name"].index == 1])
    assert row_b == {f"zo{KEY_SEPARATOR}perry", f"robert{KEY_SEPARATOR}smith", f"smith{KEY_SEPARATOR}bob"}
    assert key["email_initial_surname"].to_dict() == {
        2: f"j{KEY_SEPARATOR}perry",
        4: f"r{KEY_SEPARATOR}smith",
        5: f"j{KEY_SEPARATOR}perry",
    }
