"""Cursor and range planning: the rules that make "nothing lost, nothing twice" hold."""

from __future__ import annotations

import pytest

from idr_pipeline.stream.guard import PositionMismatch
from idr_pipeline.stream.offsets import (
    OffsetRange,
    cursor_from_keys,
    decode_cursor,
    encode_cursor,
    parse_range_key,
    plan_ranges,
    range_key,
)


def test_key_names_inclusive_offsets_and_round_trips():
    r = OffsetRange("t", 0, 100, 200)
    assert r.key == "p0-000000000100-000000000199"
    assert parse_range_key("t", r.key) == r
    assert range_key(12, 0, 1) == "p12-000000000000-000000000000"


def test_keys_sort_in_offset_order():
    keys = [OffsetRange("t", 0, s, s + 10).key for s in (5, 1000, 20, 100_000)]
    assert sorted(keys) == [OffsetRange("t", 0, s, s + 10).key for s in (5, 20, 1000, 100_000)]


@pytest.mark.parametrize("bad", ["p0-1-2", "x0-000000000000-000000000001", "p0-000000000005-000000000001"])
def test_malformed_or_empty_keys_are_refused(bad):
    with pytest.raises(ValueError):
        parse_range_key("t", bad)


def test_cursor_round_trip_and_empty():
    cursor = {"b": {1: 5, 0: 7}, "a": {0: 0}}
    text = encode_cursor(cursor)
    assert decode_cursor(text) == cursor
    assert text == encode_cursor(decode_cursor(text))  # canonical form
    assert decode_cursor(None) == {} and decode_cursor("") == {}


def test_first_plan_starts_at_low_watermark_and_caps_range_size():
    plan = plan_ranges(
        "t", {}, low={0: 10, 1: 0}, high={0: 35, 1: 4}, max_messages=10, max_ranges_per_partition=5
    )
    assert [(r.partition, r.start, r.end) for r in plan.ranges] == [
        (0, 10, 20),
        (0, 20, 30),
        (0, 30, 35),
        (1, 0, 4),
    ]
    assert plan.cursor == {"t": {0: 35, 1: 4}}
    assert plan.lag_before == {0: 25, 1: 4} and plan.lag_after == {0: 0, 1: 0}
    assert sum(r.size for r in plan.ranges) == 29  # every offset once


def test_cursor_moves_only_past_planned_ranges():
    plan = plan_ranges(
        "t", {"t": {0: 0}}, low={0: 0}, high={0: 100}, max_messages=10, max_ranges_per_partition=3
    )
    assert [r.key for r in plan.ranges][-1] == "p0-000000000020-000000000029"
    assert plan.cursor["t"][0] == 30 and plan.lag_after == {0: 70}
    nxt = plan_ranges(
        "t", plan.cursor, low={0: 0}, high={0: 100}, max_messages=10, max_ranges_per_partition=3
    )
    assert nxt.ranges[0].start == 30  # the remainder is planned next tick, contiguous


def test_nothing_new_plans_nothing_and_keeps_cursor():
    cursor = {"t": {0: 50, 1: 7}, "other": {0: 3}}
    plan = plan_ranges(
        "t", cursor, low={0: 0, 1: 0}, high={0: 50, 1: 7}, max_messages=10, max_ranges_per_partition=3
    )
    assert plan.ranges == [] and plan.cursor == cursor


def test_new_partition_appears_and_other_topics_are_untouched():
    cursor = {"t": {0: 5}, "other": {0: 3}}
    plan = plan_ranges(
        "t", cursor, low={0: 0, 1: 0}, high={0: 5, 1: 2}, max_messages=10, max_ranges_per_partition=3
    )
    assert [r.key for r in plan.ranges] == ["p1-000000000000-000000000001"]
    assert plan.cursor == {"t": {0: 5, 1: 2}, "other": {0: 3}}
    assert cursor == {"t": {0: 5}, "other": {0: 3}}  # input not mutated


def test_retention_past_the_cursor_stops_planning():
    # Offsets 5..19 were deleted unread: planning from 20 would skip them in silence.
    with pytest.raises(PositionMismatch, match=r"offsets 5\.\.19 were deleted"):
        plan_ranges(
            "t", {"t": {0: 5}}, low={0: 20}, high={0: 25}, max_messages=10, max_ranges_per_partition=3
        )


def test_a_partition_first_seen_past_its_log_start_reports_what_it_never_saw():
    plan = plan_ranges("t", {}, low={0: 20}, high={0: 25}, max_messages=10, max_ranges_per_partition=3)
    assert plan.expired == {0: 20}
    assert [(r.start, r.end) for r in plan.ranges] == [(20, 25)]


def test_cursor_past_high_watermark_is_an_error():
    with pytest.raises(PositionMismatch, match="recreated"):
        plan_ranges(
            "t", {"t": {0: 50}}, low={0: 0}, high={0: 10}, max_messages=10, max_ranges_per_partition=3
        )


def test_cursor_rebuilt_from_existing_partition_keys():
    keys = ["p0-000000000000-000000000009", "p0-000000000010-000000000019", "p2-000000000000-000000000004"]
    assert cursor_from_keys("t", keys) == {"t": {0: 20, 2: 5}}
    assert cursor_from_keys("t", []) == {}
