"""The stream service against the real broker and store: aggregates, segments, history, accounting.

Every test ends with the ledger balanced (``account``: ranges and recorded losses tile every
offset up to the position, messages = valid + dead letters) and with every landed offset in
the lake exactly once.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from idr_pipeline.core.catalog import RAW_EVENTS, dead_letter_dataset
from idr_pipeline.live import service as service_module
from idr_pipeline.live.accounting import account
from idr_pipeline.live.ranges import parse, write_range
from idr_pipeline.live.recovery import reset_topic
from idr_pipeline.live.service import CONSUMER
from idr_pipeline.store.stream_state import stream_paused
from idr_pipeline.stream import land
from idr_pipeline.stream.consume import read_range, watermarks
from idr_pipeline.stream.guard import PositionMismatch
from idr_pipeline.stream.offsets import OffsetRange, range_key
from idr_pipeline.stream.producer import Message, publish
from idr_pipeline_tests.live.conftest import World, drain, event

DAY = timedelta(days=1)


def _members(world: World, segment: str) -> set[str]:
    with world.store() as store:
        return {r["identity_id"] for r in store.select_rows("segment_members", {"segment_id": segment})}


def _history(world: World, segment: str) -> list[tuple[str, str]]:
    with world.store() as store:
        rows = store.select_rows(
            "segment_membership_history", {"segment_id": segment}, order_by=["changed_at"]
        )
    return [(r["identity_id"], r["change_type"]) for r in rows]


def _aggregated_events(world: World) -> int:
    with world.store() as store:
        return int(store.query("SELECT COALESCE(SUM(events), 0) FROM event_aggregates")[0][0])


def _assert_balanced(world: World, topic: str | None = None) -> None:
    with world.store() as store:
        acc = account(store, CONSUMER, topic or world.config.events_topic)
    assert acc.balanced, acc.problems
    landed = land.read_dataset(world.config.lake_uri, RAW_EVENTS)
    dead = land.read_dataset(world.config.lake_uri, dead_letter_dataset(RAW_EVENTS))
    coordinates = []
    for table in (t for t in (landed, dead) if t is not None):
        coordinates += list(
            zip(
                table.column("kafka_partition").to_pylist(),
                table.column("kafka_offset").to_pylist(),
                strict=True,
            )
        )
    assert len(coordinates) == len(set(coordinates)), "an offset landed twice"
    assert len(coordinates) == acc.messages


def test_events_reach_aggregates_and_segments_with_history(world: World) -> None:
    world.publish(
        [
            event("purchase", "anon-a", timedelta(hours=2), category="Luxury", price=300.0),
            event("purchase", "anon-a", timedelta(hours=1), category="luxury", price=250.0),
            event("purchase", "anon-b", timedelta(hours=1), category="luxury", price=100.0),
            event("ad_click", "anon-c", timedelta(days=2), campaign="Black_Friday"),
            event("page_view", "anon-nobody", timedelta(hours=1), category="books"),
        ]
    )
    publish(world.bootstrap, world.config.events_topic, [Message("anon-a", b'{"event_id": "x", "type": ')])
    with world.service() as service:
        drain(service, 6)
        assert service.totals["events_dead"] == 1
    # id_a spent 550 on luxury: a luxury buyer, and a US one; id_b's 100 is not enough.
    assert _members(world, "luxury_buyers") == {"id_a"}
    assert _members(world, "us_luxury") == {"id_a"}
    assert _members(world, "black_friday_clickers") == {"id_c"}
    assert _history(world, "luxury_buyers") == [("id_a", "joined")]
    assert _aggregated_events(world) == 4
    with world.store() as store:
        (run,) = store.select_rows("event_aggregate_runs")
        segment = store.select_rows("segments", {"segment_id": "luxury_buyers"})[0]
    # The page view of an unknown cookie waits as unresolved; the rest is aggregated.
    assert (run["events"], run["aggregated"], run["unresolved"]) == (5, 4, 1)
    assert (
        run["events"] == run["aggregated"] + run["unresolved"] + run["other_types"] + run["unknown_identity"]
    )
    assert segment["member_count"] == 1
    _assert_balanced(world)


def test_restart_between_landing_and_applying_counts_and_lands_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.publish([event("purchase", "anon-a", timedelta(hours=1), category="luxury", price=600.0)] * 1)
    world.publish([event("page_view", f"anon-{w}", timedelta(minutes=5)) for w in "abcd" * 5])
    real_apply = service_module.apply_events

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash: landed, not yet applied")

    monkeypatch.setattr(service_module, "apply_events", crash)
    first = world.service()
    with pytest.raises(RuntimeError, match="simulated crash"):
        drain(first, 21)
    first.close()
    landed_before = land.landed_partitions(world.config.lake_uri, RAW_EVENTS)
    assert landed_before, "the crash came after landing"
    assert _aggregated_events(world) == 0  # the failed transaction left nothing

    monkeypatch.setattr(service_module, "apply_events", real_apply)
    with world.service() as second:  # re-applies the landed ranges from the lake at start
        world.publish([event("page_view", "anon-b", timedelta(minutes=1))])
        drain(second, 22)
    assert _aggregated_events(world) == 22
    assert _members(world, "luxury_buyers") == {"id_a"}
    assert _history(world, "luxury_buyers") == [("id_a", "joined")]
    assert set(landed_before) <= set(land.landed_partitions(world.config.lake_uri, RAW_EVENTS))
    _assert_balanced(world)


def test_recreated_topic_stops_the_service_until_reset_records_the_loss(world: World) -> None:
    topic = world.config.events_topic
    world.publish([event("page_view", "anon-a", timedelta(minutes=1)) for _ in range(5)])
    with world.service() as service:
        drain(service, 5)
    admin = KafkaAdminClient(bootstrap_servers=world.bootstrap)
    try:
        admin.delete_topics([topic])
        time.sleep(0.5)
        admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        admin.close()
    # The new topic grows past the old position: offsets alone would not show the change.
    world.publish([event("purchase", "anon-b", timedelta(minutes=1), category="luxury", price=900.0)] * 1)
    world.publish([event("page_view", "anon-b", timedelta(minutes=1)) for _ in range(11)])
    with pytest.raises(PositionMismatch, match=r"(?s)recreated.*idr stream reset --topic"):
        world.service()

    done = reset_topic(world.bootstrap, world.config.store_url, CONSUMER, topic)
    assert {loss["kafka_partition"] for loss in done.losses} == {0, 1}
    assert all("recreated" in loss["reason"] and loss["last_offset"] is None for loss in done.losses)
    assert done.positions == {0: 0, 1: 0}
    with world.service() as service:
        drain(service, 12)
    assert _members(world, "luxury_buyers") == {"id_b"}
    assert _aggregated_events(world) == 5 + 12
    with world.store() as store:
        acc = account(store, CONSUMER, topic)
    assert acc.balanced, acc.problems
    assert acc.messages == 17 and len(acc.lost_ranges) == 2
    keys = land.landed_partitions(world.config.lake_uri, RAW_EVENTS)
    assert len({k.rsplit("-t", 1)[1] for k in keys}) == 2  # the two topics' ranges live side by side


def _truncate(world: World, partition: int, before: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Delete the partition's records below ``before`` (retention's effect).

    Tansu 0.6 (the test broker, memory storage) advertises DeleteRecords but panics on it
    ("not yet implemented") and does not enforce retention.ms, so when the real call fails
    the broker's log start is stood in for: the watermarks the service and the reset read
    report ``before`` as the partition's log start. Everything else is the real broker.
    """
    admin = KafkaAdminClient(bootstrap_servers=world.bootstrap)
    try:
        admin.delete_records({TopicPartition(world.config.events_topic, partition): before})
        return
    except (KafkaError, OSError, NotImplementedError):
        pass
    finally:
        admin.close()

    def truncated(bootstrap: str, topic: str, timeout_s: float = 10.0):
        low, high = watermarks(bootstrap, topic, timeout_s)
        if topic == world.config.events_topic:
            low = {**low, partition: max(low.get(partition, 0), before)}
        return low, high

    monkeypatch.setattr("idr_pipeline.live.service.watermarks", truncated)
    monkeypatch.setattr("idr_pipeline.live.recovery.watermarks", truncated)


def test_retention_past_the_position_stops_until_reset_records_the_range(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = world.config.events_topic
    world.publish([event("page_view", "anon-a", timedelta(minutes=1)) for _ in range(4)])
    with world.service() as service:
        drain(service, 4)
        position = dict(service.positions)
    (partition,) = [p for (t, p), pos in position.items() if t == topic and pos.next_offset]
    world.publish([event("page_view", "anon-a", timedelta(minutes=1)) for _ in range(10)])
    _truncate(world, partition, position[(topic, partition)].next_offset + 6, monkeypatch)
    with pytest.raises(PositionMismatch, match=r"offsets 4\.\.9 were deleted"):
        world.service()
    done = reset_topic(world.bootstrap, world.config.store_url, CONSUMER, topic)
    assert [(x["first_offset"], x["last_offset"]) for x in done.losses] == [(4, 9)]
    with world.service() as service:
        drain(service, 4)
    with world.store() as store:
        acc = account(store, CONSUMER, topic)
    assert acc.balanced, acc.problems
    assert (acc.messages, acc.lost_offsets) == (8, 6)


def test_identify_gives_a_cookies_earlier_events_to_the_identity(world: World) -> None:
    world.publish(
        [
            event("purchase", "anon-new", timedelta(hours=3), category="luxury", price=700.0),
            {**event("identify", "anon-new", timedelta(hours=1)), "email": "Erin@Example.com"},
        ]
    )
    with world.service() as service:
        drain(service, 2)
    assert _members(world, "luxury_buyers") == {"id_c"}
    with world.store() as store:
        (run,) = store.select_rows("event_aggregate_runs")
    # The purchase waited as unresolved, then went to id_c; the identify is another type.
    assert (run["events"], run["aggregated"], run["unresolved"], run["other_types"]) == (2, 1, 0, 1)
    _assert_balanced(world)


def test_windows_expire_people_on_days_without_events(world: World) -> None:
    world.publish(
        [
            event("ad_click", "anon-a", timedelta(days=5), campaign="black_friday"),
            event("purchase", "anon-b", timedelta(days=20), category="books", price=10.0),
        ]
    )
    with world.service() as service:
        drain(service, 2)
        assert _members(world, "black_friday_clickers") == {"id_a"}
        assert _members(world, "lapsed_purchasers") == set()
        world.clock.now += 3 * DAY  # no events: the click is now 8 days old, the purchase 23
        service.step()
        assert _members(world, "black_friday_clickers") == set()
        world.clock.now += 8 * DAY  # the purchase is 31 days old: lapsed
        service.step()
        assert _members(world, "lapsed_purchasers") == {"id_b"}
    assert _history(world, "black_friday_clickers") == [("id_a", "joined"), ("id_a", "left")]
    with world.store() as store:
        runs = store.select_rows("event_aggregate_runs", order_by=["as_of"])
    assert len(runs) == 3 and runs[-1]["aggregated"] == 2


def test_the_batch_publish_waits_for_the_service_to_pause(world: World) -> None:
    with world.service() as service:
        stop = threading.Event()
        loop = threading.Thread(target=service.run, args=(stop.is_set,), daemon=True)
        loop.start()
        try:
            with world.store() as store, stream_paused(store, timeout_s=30):
                control = store.select_rows("stream_control", {"consumer": CONSUMER})[0]
                assert control["paused_at"] is not None
                world.publish([event("page_view", "anon-a", timedelta(minutes=1))])
                time.sleep(2 * world.config.batch_seconds + 1)
                assert _aggregated_events(world) == 0  # held while the batch writes
            deadline = time.monotonic() + 30
            while _aggregated_events(world) == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _aggregated_events(world) == 1
        finally:
            stop.set()
            loop.join(30)


def test_ranges_landed_while_the_service_was_down_are_applied_at_start(world: World) -> None:
    """The sensor path may land ranges while the service is stopped: the service applies them all."""
    topic = world.config.events_topic
    world.publish([event("page_view", "anon-a", timedelta(minutes=1)) for _ in range(3)])
    with world.service() as service:
        drain(service, 3)
        ((partition, pos),) = [
            (p, v) for (t, p), v in service.positions.items() if t == topic and v.next_offset
        ]
    world.publish(
        [event("purchase", "anon-a", timedelta(minutes=1), category="luxury", price=300.0) for _ in range(4)]
    )
    start = pos.next_offset
    for first, end in ((start, start + 2), (start + 2, start + 4)):  # two ranges, as a sensor lands them
        messages = read_range(world.bootstrap, OffsetRange(topic, partition, first, end))
        key = range_key(partition, first, end, pos.topic_id)
        write_range(world.config.lake_uri, RAW_EVENTS, key, parse("events", topic, partition, messages))
    with world.service() as service:
        assert service.positions[(topic, partition)].next_offset == start + 4
    assert _aggregated_events(world) == 7
    assert _members(world, "luxury_buyers") == {"id_a"}
    _assert_balanced(world)
