"""Parsing a range: every message becomes a row or a dead letter with its offset and reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from idr_pipeline.stream.consume import RawMessage
from idr_pipeline.stream.contracts import DEAD_LETTER_COLUMNS, EVENT_COLUMNS, PROFILE_STREAM_COLUMNS
from idr_pipeline.stream.parse import parse_events, parse_profiles

SENT = datetime(2026, 1, 1, 12, tzinfo=UTC)
SENT_MS = int(SENT.timestamp() * 1000)


def _msg(offset: int, value: bytes | dict | None) -> RawMessage:
    raw = json.dumps(value).encode() if isinstance(value, dict) else value
    return RawMessage(offset, b"k", raw, SENT_MS)


GOOD = {
    "event_id": "e1",
    "type": "purchase",
    "ts": "2026-01-01T11:00:00Z",
    "anonymous_id": "a1",
    "properties": {"product_id": "sku-1", "category": "luxury", "price": 1500.0, "currency": "USD"},
}


def test_valid_and_malformed_events_add_up_with_reasons():
    msgs = [
        _msg(10, GOOD),
        _msg(11, b'{"event_id": "e2", "type": "page_vi'),
        _msg(12, {k: v for k, v in GOOD.items() if k != "event_id"}),
        _msg(13, {**GOOD, "event_id": "e4", "ts": "yesterday"}),
        _msg(14, {**GOOD, "event_id": "e5", "ts": "2036-01-01T00:00:00Z"}),
        _msg(15, {**GOOD, "event_id": "e6", "type": "teleport"}),
        _msg(16, {"event_id": "e7", "type": "identify", "ts": "2026-01-01T11:00:00Z", "anonymous_id": "a"}),
        _msg(17, None),
        _msg(18, b"[1, 2]"),
        _msg(19, {**GOOD, "event_id": "e8", "properties": {"price": "cheap"}}),
    ]
    batch = parse_events("idr.events", 3, msgs)
    assert batch.messages == batch.valid.num_rows + batch.dead.num_rows == len(msgs)
    assert batch.valid.column_names == EVENT_COLUMNS and batch.dead.column_names == DEAD_LETTER_COLUMNS
    row = batch.valid.to_pylist()[0]
    assert row["kafka_offset"] == 10 and row["kafka_partition"] == 3 and row["price"] == 1500.0
    assert row["ts"] == datetime(2026, 1, 1, 11, tzinfo=UTC)
    dead = {r["kafka_offset"]: r for r in batch.dead.to_pylist()}
    assert sorted(dead) == list(range(11, 20))
    assert {o: r["reason"].split(":")[0] for o, r in dead.items()} == {
        11: "not_json",
        12: "missing_field",
        13: "bad_type",
        14: "future_ts",
        15: "bad_value",
        16: "invalid",
        17: "empty",
        18: "not_object",
        19: "bad_type",
    }
    assert dead[12]["value"].startswith("{") and dead[12]["key"] == "k"
    assert dead[12]["received_at"] == SENT
    assert batch.reasons()["bad_type"] == 2


def test_future_is_judged_against_the_broker_timestamp_not_the_wall_clock():
    # Produced in 2026, stamped 30 minutes later: within the allowed skew, whenever we parse.
    ok = {**GOOD, "ts": "2026-01-01T12:30:00Z"}
    assert parse_events("t", 0, [_msg(0, ok)], now=datetime(2020, 1, 1, tzinfo=UTC)).valid.num_rows == 1
    late = {**GOOD, "ts": "2026-01-01T14:00:00Z"}
    assert parse_events("t", 0, [_msg(0, late)], now=datetime(2030, 1, 1, tzinfo=UTC)).dead.num_rows == 1


def test_parsing_is_deterministic():
    msgs = [_msg(i, {**GOOD, "event_id": f"e{i}"}) for i in range(5)] + [_msg(5, b"oops")]
    assert parse_events("t", 0, msgs).valid.equals(parse_events("t", 0, msgs).valid)
    assert parse_events("t", 0, msgs).dead.equals(parse_events("t", 0, msgs).dead)


def test_profiles_need_record_id_and_source_and_string_values():
    good = {
        "record_id": "web-live-1",
        "source": "web",
        "email": "a@b.com",
        "updated_at": "2026-01-01T10:00:00Z",
    }
    msgs = [
        _msg(0, good),
        _msg(1, {"source": "web", "email": "a@b.com"}),
        _msg(2, {**good, "phone": 5550100}),
        _msg(3, {**good, "updated_at": "2036-01-01T00:00:00Z"}),
        _msg(4, b"not json"),
    ]
    batch = parse_profiles("idr.profiles", 0, msgs)
    assert batch.valid.column_names == PROFILE_STREAM_COLUMNS
    assert batch.valid.num_rows == 1 and batch.dead.num_rows == 4
    assert batch.valid.to_pylist()[0]["updated_at"] == "2026-01-01T10:00:00+00:00"
    assert [r.split(":")[0] for r in batch.dead.column("reason").to_pylist()] == [
        "missing_field",
        "bad_type",
        "future_ts",
        "not_json",
    ]
