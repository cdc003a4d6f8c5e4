"""The streaming path against the real Tansu broker: sensors, range runs, re-runs, crashes, dead letters.

Each test gets its own topics (uuid suffix), lake and Dagster instance, so tests never see
each other's messages, partitions or files. No consumer groups anywhere (group joins are slow
on Tansu); offsets live in the sensor cursor and the partition keys.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from idr_pipeline.core.catalog import RAW_EVENTS, RAW_PROFILE_STREAM, dead_letter_dataset
from idr_pipeline.defs.stream.assets import ACCOUNTING_CHECK, DEAD_LETTER_CHECK
from idr_pipeline.defs.stream.definitions import standalone_streaming_definitions
from idr_pipeline.defs.stream.streams import EVENTS, PROFILES
from idr_pipeline.devtools.stream_runs import ingest_stream
from idr_pipeline.settings import get_settings
from idr_pipeline.stream import land
from idr_pipeline.stream.consume import RangeReadError, read_range, watermarks
from idr_pipeline.stream.fast_consume import topic_ids
from idr_pipeline.stream.guard import PositionMismatch
from idr_pipeline.stream.offsets import (
    OffsetRange,
    compact_topic_id,
    cursor_meta,
    decode_cursor,
    encode_sensor_cursor,
    parse_range_key,
)
from idr_pipeline.stream.producer import Message, ensure_topics, publish, publish_events, publish_profiles


@dataclass
class Env:
    bootstrap: str
    events_topic: str
    profiles_topic: str
    lake_uri: str
    defs: dg.Definitions
    instance: dg.DagsterInstance


@pytest.fixture
def env(kafka_bootstrap: str, idr_env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    suffix = uuid.uuid4().hex[:10]
    events_topic, profiles_topic = f"test.events.{suffix}", f"test.profiles.{suffix}"
    monkeypatch.setenv("IDR_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("IDR_EVENTS_TOPIC", events_topic)
    monkeypatch.setenv("IDR_PROFILES_TOPIC", profiles_topic)
    monkeypatch.setenv("IDR_TOPIC_PARTITIONS", "2")
    monkeypatch.setenv("IDR_STREAM_READ_TIMEOUT_S", "10")
    get_settings.cache_clear()
    ensure_topics(kafka_bootstrap, [events_topic, profiles_topic])
    with dg.instance_for_test() as instance:
        yield Env(
            kafka_bootstrap,
            events_topic,
            profiles_topic,
            get_settings().lake_uri,
            standalone_streaming_definitions(),
            instance,
        )
    get_settings.cache_clear()


def _tid(env: Env, topic: str) -> str:
    return compact_topic_id(topic_ids(env.bootstrap, [topic])[topic])


def _event(i: int, anon: str = "anon-1", **extra) -> dict:
    ts = datetime.now(UTC) - timedelta(minutes=5)
    return {"event_id": f"e{i}", "type": "page_view", "ts": ts.isoformat(), "anonymous_id": anon, **extra}


def _evaluate(env: Env, stream, cursor: str | None) -> dg.SensorResult:
    sensor = env.defs.resolve_sensor_def(stream.sensor_name)
    context = dg.build_sensor_context(
        instance=env.instance,
        cursor=cursor,
        definitions=env.defs,
        resources={"kafka": env.defs.resources["kafka"], "store": env.defs.resources["store"]},
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _apply(env: Env, result: dg.SensorResult) -> list[str]:
    keys: list[str] = []
    for request in result.dynamic_partitions_requests or []:
        env.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        keys += list(request.partition_keys)
    return keys


def _run(env: Env, stream, key: str) -> dg.ExecuteInProcessResult:
    job = env.defs.resolve_job_def(stream.job_name)
    return job.execute_in_process(partition_key=key, instance=env.instance, raise_on_error=False)


def test_watermarks_count_whole_producer_batches(env: Env):
    # One producer batch per partition: Tansu lists the batch's base offset + 1 as the high
    # watermark; the confirmed value must count every message.
    publish(env.bootstrap, env.events_topic, [Message("same-key", b"{}") for _ in range(300)])
    _, high = watermarks(env.bootstrap, env.events_topic)
    assert sum(high.values()) == 300


def test_read_range_is_exact_and_fails_loudly_when_short(env: Env):
    publish(env.bootstrap, env.events_topic, [Message("k", json.dumps({"i": i}).encode()) for i in range(50)])
    _, high = watermarks(env.bootstrap, env.events_topic)
    (partition,) = [p for p, h in high.items() if h]
    got = read_range(env.bootstrap, OffsetRange(env.events_topic, partition, 10, 20))
    assert [m.offset for m in got] == list(range(10, 20))
    assert [json.loads(m.value)["i"] for m in got] == list(range(10, 20))
    with pytest.raises(RangeReadError, match="read 10 messages"):
        read_range(env.bootstrap, OffsetRange(env.events_topic, partition, 40, 60), timeout_s=2)


def test_sensor_cursor_advances_only_for_planned_ranges(env: Env, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IDR_STREAM_MAX_RANGE_MESSAGES", "20")
    monkeypatch.setenv("IDR_STREAM_MAX_RANGES_PER_TICK", "2")
    get_settings.cache_clear()
    publish_events(env.bootstrap, [_event(i) for i in range(50)], topic=env.events_topic)

    first = _evaluate(env, EVENTS, None)
    keys = [r.partition_key for r in first.run_requests]
    (partition,) = {parse_range_key(env.events_topic, k).partition for k in keys}
    tid = _tid(env, env.events_topic)
    assert keys == [
        f"p{partition}-000000000000-000000000019-t{tid}",
        f"p{partition}-000000000020-000000000039-t{tid}",
    ]
    assert [r.run_key for r in first.run_requests] == [f"{env.events_topic}:{k}" for k in keys]
    assert decode_cursor(first.cursor)[env.events_topic][partition] == 40  # not 50: capped tick
    assert _apply(env, first) == keys
    (obs,) = first.asset_events
    assert obs.asset_key == EVENTS.source_key and obs.metadata["consumer_lag"].value == 50

    second = _evaluate(env, EVENTS, first.cursor)
    assert [r.partition_key for r in second.run_requests] == [
        f"p{partition}-000000000040-000000000049-t{tid}"
    ]
    _apply(env, second)

    third = _evaluate(env, EVENTS, second.cursor)
    assert not third.run_requests and not third.dynamic_partitions_requests
    assert third.cursor == second.cursor

    # A sensor that lost its cursor continues after the existing partitions instead of re-planning.
    reset = _evaluate(env, EVENTS, None)
    assert not reset.run_requests and reset.cursor == second.cursor

    publish_events(env.bootstrap, [_event(i) for i in range(50, 53)], topic=env.events_topic)
    fourth = _evaluate(env, EVENTS, third.cursor)
    assert [r.partition_key for r in fourth.run_requests] == [
        f"p{partition}-000000000050-000000000052-t{tid}"
    ]


def test_rerun_gives_same_rows_and_dead_letters_do_not_fail_the_batch(env: Env):
    good = [_event(i, anon=f"a{i % 3}") for i in range(30)]
    publish_events(env.bootstrap, good, topic=env.events_topic)
    future = _event(99, anon="a0", ts=(datetime.now(UTC) + timedelta(days=400)).isoformat())
    bad = [
        Message("a0", b'{"event_id": "x", "type": "page_'),
        Message("a0", json.dumps({"type": "page_view", "ts": good[0]["ts"], "anonymous_id": "a0"}).encode()),
        Message("a0", json.dumps({**_event(98, anon="a0"), "ts": "not a time"}).encode()),
        Message("a0", json.dumps(future).encode()),
    ]
    publish(env.bootstrap, env.events_topic, bad)

    result = _evaluate(env, EVENTS, None)
    keys = _apply(env, result)
    messages = 0
    for key in keys:
        run = _run(env, EVENTS, key)
        assert run.success
        checks = {e.check_name: e for e in run.get_asset_check_evaluations()}
        assert checks[ACCOUNTING_CHECK].passed
        messages += parse_range_key(env.events_topic, key).size

    assert messages == 34
    valid = land.read_dataset(env.lake_uri, RAW_EVENTS)
    dead = land.read_dataset(env.lake_uri, dead_letter_dataset(RAW_EVENTS))
    assert valid.num_rows + dead.num_rows == messages
    assert sorted(valid.column("event_id").to_pylist()) == sorted(e["event_id"] for e in good)
    reasons = sorted(r.split(":")[0] for r in dead.column("reason").to_pylist())
    assert reasons == ["bad_type", "future_ts", "missing_field", "not_json"]
    a0_key = next(
        k
        for k in keys
        if "a0"
        in land.read_partition(env.lake_uri, dead_letter_dataset(RAW_EVENTS), k).column("key").to_pylist()
    )
    dead_a0 = land.read_partition(env.lake_uri, dead_letter_dataset(RAW_EVENTS), a0_key).to_pylist()
    rng = parse_range_key(env.events_topic, a0_key)
    assert all(rng.start <= d["kafka_offset"] < rng.end for d in dead_a0)

    # 4 dead of ~14 messages in that range: the dead-letter check fails, the run does not.
    run = _run(env, EVENTS, a0_key)
    assert run.success
    rate_check = next(e for e in run.get_asset_check_evaluations() if e.check_name == DEAD_LETTER_CHECK)
    assert not rate_check.passed and rate_check.metadata["dead_letters"].value == 4

    # Re-running a range rewrites identical files: same rows, nothing doubled.
    before = {k: land.read_partition(env.lake_uri, RAW_EVENTS, k) for k in keys}
    for key in keys:
        assert _run(env, EVENTS, key).success
    for key in keys:
        assert land.read_partition(env.lake_uri, RAW_EVENTS, key).equals(before[key])
    assert land.read_dataset(env.lake_uri, RAW_EVENTS).num_rows == valid.num_rows


def test_crashed_run_loses_nothing_and_rerun_duplicates_nothing(env: Env, monkeypatch: pytest.MonkeyPatch):
    publish_events(env.bootstrap, [_event(i, anon=f"a{i % 4}") for i in range(40)], topic=env.events_topic)
    publish_profiles(
        env.bootstrap,
        [{"record_id": f"web-live-{i}", "source": "web", "email": f"p{i}@example.com"} for i in range(5)],
        topic=env.profiles_topic,
    )
    real_write = land.write_partition
    crashed: list[str] = []

    def crash_once(lake_uri, dataset, key, table):
        # Fault injection: the range was read and parsed, the process dies before writing.
        if dataset == RAW_EVENTS and not crashed:
            crashed.append(key)
            raise RuntimeError("simulated crash after reading, before writing")
        return real_write(lake_uri, dataset, key, table)

    monkeypatch.setattr(land, "write_partition", crash_once)
    first = ingest_stream(env.instance, env.defs)
    assert len(first.failed) == 1 and first.failed[0] == f"events:{crashed[0]}"
    assert first.by_stream["profiles"] == {
        "messages": 5,
        "valid": 5,
        "dead": 0,
        "partitions": first.by_stream["profiles"]["partitions"],
    }

    second = ingest_stream(env.instance, env.defs)  # re-runs the crashed range first
    assert not second.failed
    assert first.messages + second.messages == 40 + 5
    assert first.valid + second.valid + first.dead + second.dead == 45
    events = land.read_dataset(env.lake_uri, RAW_EVENTS)
    assert events.num_rows == 40 and len(set(events.column("event_id").to_pylist())) == 40
    assert land.read_dataset(env.lake_uri, RAW_PROFILE_STREAM).num_rows == 5
    offsets = sorted(
        zip(
            events.column("kafka_partition").to_pylist(),
            events.column("kafka_offset").to_pylist(),
            strict=True,
        )
    )
    assert len(set(offsets)) == 40

    third = ingest_stream(env.instance, env.defs)
    assert third.messages == 0 and third.partitions == 0
    assert env.instance.get_materialized_partitions(EVENTS.raw_key) == set(
        env.instance.get_dynamic_partitions(EVENTS.partitions_def.name)
    )
    assert PROFILES.partitions_def.name == "idr_profiles_ranges"


def _recreate(env: Env, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=env.bootstrap)
    try:
        admin.delete_topics([topic])
        time.sleep(0.5)
        admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        admin.close()


def _profiles(n: int, start: int = 0) -> list[dict]:
    return [
        {"record_id": f"web-r{i}", "source": "web", "email": f"r{i}@example.com"}
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize("lose_cursor", [False, True], ids=["with-cursor", "cursor-rebuilt-from-keys"])
def test_profiles_sensor_stops_on_a_recreated_topic_grown_past_its_cursor(env: Env, lose_cursor: bool):
    """The issue's silent skip: a recreated profiles topic that grew past the old cursor."""
    publish_profiles(env.bootstrap, _profiles(6), topic=env.profiles_topic)
    first = _evaluate(env, PROFILES, None)
    for key in _apply(env, first):
        assert _run(env, PROFILES, key).success
    _recreate(env, env.profiles_topic)
    publish_profiles(env.bootstrap, _profiles(20, start=100), topic=env.profiles_topic)

    if lose_cursor:
        # Rebuilt from the existing partitions: only ranges of the current topic id count, so
        # the new topic is read from its start instead of from where the old one stopped.
        result = _evaluate(env, PROFILES, None)
        planned = [parse_range_key(env.profiles_topic, r.partition_key) for r in result.run_requests]
        assert {(r.start, r.topic_id) for r in planned} == {(0, _tid(env, env.profiles_topic))}
        assert sum(r.size for r in planned) == 20
        return
    with pytest.raises(
        PositionMismatch, match="(?s)recreated.*dagster sensor cursor idr_profiles_sensor"
    ) as err:
        _evaluate(env, PROFILES, first.cursor)
    # The message carries the cursor to set: the loss recorded, the new topic from offset 0.
    fixed = str(err.value).split("--set '", 1)[1].rstrip("'")
    lost = cursor_meta(fixed).lost
    assert {x["reason"].split(":")[1].strip().split(" (")[0] for x in lost} == {"the topic was recreated"}
    after = _evaluate(env, PROFILES, fixed)
    landed = 0
    for key in _apply(env, after):
        assert _run(env, PROFILES, key).success
        landed += parse_range_key(env.profiles_topic, key).size
    assert landed == 20
    assert after.asset_events[0].metadata["lost_ranges"].value == lost
    rows = land.read_dataset(env.lake_uri, RAW_PROFILE_STREAM)
    assert rows.num_rows == 26 and len(set(rows.column("record_id").to_pylist())) == 26


def test_events_sensor_stops_when_the_high_watermark_is_below_its_cursor(env: Env):
    publish_events(env.bootstrap, [_event(i) for i in range(8)], topic=env.events_topic)
    first = _evaluate(env, EVENTS, None)
    cursor = decode_cursor(first.cursor)
    meta = cursor_meta(first.cursor)
    meta.topic_ids = {}  # a cursor written before ids were recorded: only offsets can tell
    (partition,) = [p for p, o in cursor[env.events_topic].items() if o]
    cursor[env.events_topic][partition] = 50
    with pytest.raises(PositionMismatch, match="high watermark 8 is below the next offset to read 50"):
        _evaluate(env, EVENTS, encode_sensor_cursor(cursor, meta))
