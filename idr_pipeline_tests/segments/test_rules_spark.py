"""The rule DSL on Spark against hand-checked golden cases: each leaf, window edges, totals,
boolean algebra, in_segment and the age band's birthday edge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pyspark.sql import types as T

from idr_pipeline.segments.dsl import parse_expression
from idr_pipeline.segments.rules_spark import RuleInputs, evaluate_rule
from idr_pipeline_tests.segments.helpers import END, days

SECOND = timedelta(seconds=1)

EVENTS = [
    # identity, type, ago, category, campaign, price
    ("lux", "purchase", days(10), "luxury", None, 600.0),
    ("lux_small", "purchase", days(5), "Luxury", None, 300.0),
    ("lux_two", "purchase", days(3), "luxury", None, 300.0),
    ("lux_two", "purchase", days(20), "luxury", None, 250.0),
    ("edge_in", "purchase", days(30), "luxury", None, 900.0),
    ("edge_out", "purchase", days(30) + SECOND, "luxury", None, 900.0),
    ("future", "purchase", timedelta(0), "luxury", None, 900.0),
    ("lapsed", "purchase", days(60), "books", None, 20.0),
    ("clicker", "ad_click", days(2), None, "black_friday", None),
    ("old_clicker", "ad_click", days(8), None, "black_friday", None),
    ("viewer", "page_view", days(1), "sports", None, None),
    (None, "purchase", days(1), "luxury", None, 5000.0),  # unresolved: belongs to no identity
]
PROFILES = [
    # identity, country, dob (as of 2025-03-31)
    ("lux", "US", "2000-03-31"),  # 25 today
    ("lux_small", "US", "2000-04-01"),  # 24 until tomorrow
    ("lux_two", "CA", "1990-04-01"),  # 34
    ("edge_in", "US", "1990-03-31"),  # 35 today
    ("edge_out", "US", None),
    ("future", "GB", "not a date"),
    ("lapsed", "US", "1970-01-01"),
    ("clicker", "CA", None),
    ("old_clicker", "US", None),
    ("viewer", "US", None),
    ("quiet", "US", "1995-06-15"),  # no events
]
EVERYONE = {p[0] for p in PROFILES}
PURCHASERS_365 = {"lux", "lux_small", "lux_two", "edge_in", "edge_out", "lapsed"}


@pytest.fixture(scope="module")
def inputs(spark) -> RuleInputs:
    schema = "identity_id string, type string, ts timestamp, category string, campaign string, product_id string, price double"
    events = spark.createDataFrame(
        [(i, t, END - ago, c, camp, None, p) for i, t, ago, c, camp, p in EVENTS], schema
    ).cache()
    profiles = spark.createDataFrame(
        [(i, c, None, None, None, d) for i, c, d in PROFILES],
        T.StructType(
            [
                T.StructField(n, T.StringType())
                for n in ("identity_id", "country", "state", "city", "postcode", "dob")
            ]
        ),
    ).cache()
    vip = spark.createDataFrame(
        [("lux", 1.0), ("clicker", 1.0), ("gone", 1.0)], "identity_id string, score double"
    )
    return RuleInputs(events, profiles, profiles.select("identity_id"), END, {"vip": vip})


CASES = {
    "luxury_min_total": (
        {"purchased": {"category": "luxury", "within_days": 30, "min_total": 500}},
        {"lux", "lux_two", "edge_in"},
    ),
    "category_case_insensitive_no_total": (
        {"purchased": {"category": "LUXURY", "within_days": 30}},
        {"lux", "lux_small", "lux_two", "edge_in"},
    ),
    "window_edge_one_day": ({"purchased": {"within_days": 3}}, {"lux_two"}),
    "min_count": ({"purchased": {"category": "luxury", "min_count": 2, "within_days": 90}}, {"lux_two"}),
    "clicked_campaign_7d": ({"clicked": {"campaign": "Black_Friday", "within_days": 7}}, {"clicker"}),
    "viewed_category": ({"viewed": {"category": "sports"}}, {"viewer"}),
    "attribute_lower_case": (
        {"attribute": {"field": "country", "in": ["ca", "gb"]}},
        {"lux_two", "clicker", "future"},
    ),
    "age_band_birthday_edges": ({"age": {"min": 25, "max": 34}}, {"lux", "lux_two", "quiet"}),
    "age_open_max": ({"age": {"min": 50}}, {"lapsed"}),
    "lapsed_all_not": (
        {"all": [{"purchased": {"within_days": 90}}, {"not": {"purchased": {"within_days": 30}}}]},
        {"lapsed", "edge_out"},
    ),
    "any": (
        {"any": [{"clicked": {"within_days": 7}}, {"viewed": {"within_days": 7}}]},
        {"clicker", "viewer"},
    ),
    "not_alone_complements_universe": (
        {"not": {"purchased": {"within_days": 365}}},
        EVERYONE - PURCHASERS_365,
    ),
    "in_segment_restricted_to_universe": ({"in_segment": "vip"}, {"lux", "clicker"}),
    "nested": (
        {
            "all": [
                {"in_segment": "vip"},
                {"any": [{"attribute": {"field": "country", "in": ["US"]}}, {"age": {"max": 20}}]},
            ]
        },
        {"lux"},
    ),
    "injection_is_just_a_value": ({"purchased": {"category": "x' OR '1'='1", "within_days": 365}}, set()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rule_golden_cases(inputs: RuleInputs, name: str) -> None:
    raw, expected = CASES[name]
    rows = evaluate_rule(parse_expression(raw), inputs).collect()
    assert {r["identity_id"] for r in rows} == expected
    assert all(r["score"] == 1.0 for r in rows)
    assert len(rows) == len({r["identity_id"] for r in rows})  # distinct
