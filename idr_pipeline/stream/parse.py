"""Turn one range's messages into landed rows and dead letters, accounting for every message.

Pure: the same messages always give the same two tables. The far-future test compares an
event's timestamp with the broker's timestamp of its message (when it was produced), not the
wall clock, so re-running an old range judges it exactly as the first run did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ValidationError

from idr_pipeline.stream.consume import RawMessage
from idr_pipeline.stream.contracts import (
    DEAD_LETTER_COLUMNS,
    EVENT_COLUMNS,
    PROFILE_STREAM_COLUMNS,
    Event,
    ProfileMessage,
)

_TS = pa.timestamp("us", tz="UTC")

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("ts", _TS),
        ("anonymous_id", pa.string()),
        ("user_id", pa.string()),
        ("email", pa.string()),
        ("url", pa.string()),
        ("campaign", pa.string()),
        ("product_id", pa.string()),
        ("category", pa.string()),
        ("price", pa.float64()),
        ("currency", pa.string()),
        ("kafka_topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)
PROFILE_SCHEMA = pa.schema(
    [(c, pa.string()) for c in PROFILE_STREAM_COLUMNS[:-2]]
    + [("kafka_partition", pa.int32()), ("kafka_offset", pa.int64())]
)
DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("kafka_topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("key", pa.string()),
        ("value", pa.string()),
        ("reason", pa.string()),
        ("received_at", _TS),
    ]
)
assert EVENT_SCHEMA.names == EVENT_COLUMNS
assert PROFILE_SCHEMA.names == PROFILE_STREAM_COLUMNS
assert DEAD_LETTER_SCHEMA.names == DEAD_LETTER_COLUMNS

_MAX_REASON = 500


@dataclass(frozen=True)
class ParsedBatch:
    """``valid`` and ``dead`` partition the input: ``messages == valid.num_rows + dead.num_rows``."""

    messages: int
    valid: pa.Table
    dead: pa.Table
    #: The valid rows as the parser built them (before Arrow), when it did: a consumer that
    #: needs Python rows next need not convert the table back. None for batches read back.
    rows: list[dict[str, Any]] | None = field(default=None, compare=False, repr=False)

    def valid_rows(self) -> list[dict[str, Any]]:
        return self.rows if self.rows is not None else self.valid.to_pylist()

    @property
    def dead_rate(self) -> float:
        return self.dead.num_rows / self.messages if self.messages else 0.0

    def reasons(self) -> dict[str, int]:
        """Dead letters per reason category (the text before the first colon)."""
        counts: dict[str, int] = {}
        for reason in self.dead.column("reason").to_pylist():
            category = reason.split(":", 1)[0]
            counts[category] = counts.get(category, 0) + 1
        return dict(sorted(counts.items()))


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="backslashreplace")


def _broker_time(msg: RawMessage, fallback: datetime) -> datetime:
    return datetime.fromtimestamp(msg.timestamp_ms / 1000, UTC) if msg.timestamp_ms >= 0 else fallback


def _category(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "json_invalid":
        return "not_json"
    if kind in ("model_type", "model_attributes_type", "dict_type") and not error["loc"]:
        return "not_object"
    if kind == "missing":
        return "missing_field"
    if kind == "value_error":
        return "invalid" if not error["loc"] else "bad_value"
    if kind in ("literal_error", "greater_than_equal", "string_too_short", "string_too_long"):
        return "bad_value"
    return "bad_type"


def _reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(x) for x in e['loc']) or 'message'}: {e['msg']}" for e in errors]
    return f"{_category(errors[0])}: {'; '.join(parts)}"[:_MAX_REASON]


def _parse(
    topic: str,
    partition: int,
    messages: Sequence[RawMessage],
    model: type[BaseModel],
    to_row: Callable[[Any], dict[str, Any]],
    schema: pa.Schema,
    now: datetime,
) -> ParsedBatch:
    rows: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    for msg in messages:
        produced = _broker_time(msg, now)
        reason: str | None = None
        if msg.value is None or not msg.value.strip():
            reason = "empty: message has no value"
        else:
            try:
                item = model.model_validate_json(msg.value)
                item.check_not_future(produced)  # type: ignore[attr-defined]
            except ValidationError as exc:
                reason = _reason(exc)
            except ValueError as exc:
                reason = f"future_ts: {exc}"[:_MAX_REASON]
        if reason is None:
            row = to_row(item)
            row.update(kafka_topic=topic, kafka_partition=partition, kafka_offset=msg.offset)
            rows.append(row)
        else:
            dead.append(
                {
                    "kafka_topic": topic,
                    "kafka_partition": partition,
                    "kafka_offset": msg.offset,
                    "key": _text(msg.key),
                    "value": _text(msg.value),
                    "reason": reason,
                    "received_at": produced if msg.timestamp_ms >= 0 else None,
                }
            )
    return ParsedBatch(
        messages=len(messages),
        valid=pa.Table.from_pylist(rows, schema=schema),
        dead=pa.Table.from_pylist(dead, schema=DEAD_LETTER_SCHEMA),
        rows=rows,
    )


def _event_row(e: Event) -> dict[str, Any]:
    p = e.properties
    return {
        "event_id": e.event_id,
        "type": e.type,
        "ts": e.ts,
        "anonymous_id": e.anonymous_id,
        "user_id": e.user_id,
        "email": e.email,
        "url": p.url,
        "campaign": p.campaign,
        "product_id": p.product_id,
        "category": p.category,
        "price": p.price,
        "currency": p.currency,
    }


def _profile_row(p: ProfileMessage) -> dict[str, Any]:
    row = p.model_dump()
    row["updated_at"] = p.updated_at.isoformat() if p.updated_at else None
    return row


def parse_events(
    topic: str, partition: int, messages: Sequence[RawMessage], now: datetime | None = None
) -> ParsedBatch:
    """Valid events as EVENT_COLUMNS rows; the rest as dead letters with a reason.

    ``now`` only stands in for the broker timestamp when a message has none.
    """
    return _parse(topic, partition, messages, Event, _event_row, EVENT_SCHEMA, now or datetime.now(UTC))


def parse_profiles(
    topic: str, partition: int, messages: Sequence[RawMessage], now: datetime | None = None
) -> ParsedBatch:
    """Valid profile records as PROFILE_STREAM_COLUMNS rows; the rest as dead letters."""
    return _parse(
        topic, partition, messages, ProfileMessage, _profile_row, PROFILE_SCHEMA, now or datetime.now(UTC)
    )
