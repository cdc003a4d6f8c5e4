"""The audience expression language: what it accepts, what it refuses, and its cost limits."""

import pydantic
import pytest

from idr_pipeline.segments.dsl import (
    MAX_NODES,
    All,
    ExpressionTooCostly,
    Not,
    Purchased,
    SegmentCatalog,
    max_window_days,
    parse_expression,
    referenced_segments,
    to_json,
)

LUXURY = {"purchased": {"category": "luxury", "within_days": 30, "min_total": 500}}


def test_nested_expression_round_trips_through_json() -> None:
    raw = {
        "all": [
            LUXURY,
            {"not": {"attribute": {"field": "country", "in": ["CA"]}}},
            {"any": [{"clicked": {"campaign": "X", "within_days": 7}}, {"in_segment": "vip"}]},
            {"age": {"min": 25, "max": 34}},
        ]
    }
    expr = parse_expression(raw)
    assert isinstance(expr, All) and isinstance(expr.all[0], Purchased) and isinstance(expr.all[1], Not)
    assert parse_expression(to_json(expr)) == expr
    assert max_window_days(expr) == 30
    assert referenced_segments(expr) == {"vip"}


@pytest.mark.parametrize(
    "bad",
    [
        {"purchased": {"category": "luxury", "sql": "1=1"}},  # unknown argument
        {"select": "* from identities"},  # unknown operator
        {"purchased": {}, "clicked": {}},  # two operators in one node
        {"all": []},
        {"purchased": {"within_days": 0}},
        {"purchased": {"within_days": 10_000}},
        {"age": {"min": 40, "max": 30}},
        {"age": {}},
        {"attribute": {"field": "email", "in": ["a@b.c"]}},  # not a filterable attribute
        "purchased",
    ],
)
def test_malformed_expressions_are_refused(bad: object) -> None:
    with pytest.raises(pydantic.ValidationError):
        parse_expression(bad)


def test_too_deep_or_too_wide_is_refused_as_costly() -> None:
    deep: dict = LUXURY
    for _ in range(12):
        deep = {"not": deep}
    with pytest.raises(ExpressionTooCostly, match="deep"):
        parse_expression(deep)
    with pytest.raises(ExpressionTooCostly, match="nodes"):
        parse_expression({"any": [LUXURY] * MAX_NODES})


def test_catalog_rejects_duplicate_ids_and_dangling_references() -> None:
    rule = {"kind": "rule", "name": "n", "rule": LUXURY}
    with pytest.raises(pydantic.ValidationError, match="duplicate"):
        SegmentCatalog.model_validate({"segments": [{**rule, "id": "a"}, {**rule, "id": "a"}]})
    with pytest.raises(pydantic.ValidationError, match="unknown segments"):
        SegmentCatalog.model_validate({"segments": [{**rule, "id": "a", "rule": {"in_segment": "zzz"}}]})
    with pytest.raises(pydantic.ValidationError, match="description or examples"):
        SegmentCatalog.model_validate(
            {"segments": [{"id": "p", "kind": "prototype", "name": "p", "threshold": 0.5}]}
        )


@pytest.mark.parametrize(
    "leaf",
    [
        {"purchased": {"min_count": 9223372036854775808}},
        {"purchased": {"min_total": 1e23}},
        {"purchased": {"min_total": float("nan")}},
        {"clicked": {"min_count": 0}},
    ],
)
def test_numeric_options_out_of_bounds_are_refused(leaf: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        parse_expression(leaf)
