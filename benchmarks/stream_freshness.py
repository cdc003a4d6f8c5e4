"""From a Kafka event to segment membership: per-stage lag of marker events under a steady rate.

Starts what it needs: the Tansu broker (``idr services up --only kafka``), a fresh SQLite
store (``--store mariadb`` for a throwaway MariaDB database) seeded with ``--people``
identities, fresh topics and lake, and the stream service (``idr stream run``) as its own
process. Then it publishes ``--rate`` events per second for ``--seconds`` seconds (page views,
ad clicks, purchases of the seeded people, ~1% malformed) and, once a second, a marker: a
luxury purchase of 600 by a marker identity, which must make it join ``luxury_buyers``.

Per marker it prints the lag from publishing to
* landed: the service's ledger time for the range holding the marker's offset,
* aggregates: first seen in the store's event_aggregates by a separate reader polling it,
* segment: first seen in segment_members (luxury_buyers) by that reader;
the identity change feed does not exist yet and is skipped. It samples the producer's queue
depth and the consumer lag every two seconds, and ends with one line for machines:

    p95_segment_lag_s=<float> sustained_events_per_s=<float> lost=<int>

    .venv/bin/python benchmarks/stream_freshness.py --rate 10000 --seconds 120
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import confluent_kafka as ck
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from idr_pipeline.devtools import services  # noqa: E402
from idr_pipeline.store import open_store  # noqa: E402
from idr_pipeline.stream.consume import watermarks  # noqa: E402
from idr_pipeline.stream.producer import ensure_topics  # noqa: E402
from idr_pipeline_tests.services_fixtures import throwaway_database  # noqa: E402

CATEGORIES = ["apparel", "electronics", "home", "beauty", "books", "sports", "toys", "luxury"]
CAMPAIGNS = ["spring_sale", "retarget_cart", "brand_search", "newsletter_q2", "black_friday"]
MALFORMED = [
    b'{"event_id": "broken", "type": "page_',
    b'{"type": "page_view", "ts": "2026-01-01T00:00:00Z", "anonymous_id": "x"}',
    b'{"event_id": "bad-ts", "type": "page_view", "ts": "not a time", "anonymous_id": "x"}',
]
SEGMENT = "luxury_buyers"


def seed_store(url: str, people: int, markers: int) -> None:
    """Identities with one cookie each (anon-<i>), golden profiles, and the marker identities."""
    with open_store(url) as store:
        store.ensure_schema()
        ids = [f"p{i:07d}" for i in range(people)] + [f"marker{k:05d}" for k in range(markers)]
        cookies = [f"anon-{i}" for i in range(people)] + [f"anon-marker-{k}" for k in range(markers)]
        store.upsert_identities({"identity_id": i, "status": "active", "record_count": 1} for i in ids)
        store.upsert_identifiers(
            {"id_type": "anonymous_id", "id_value": c, "identity_id": i}
            for i, c in zip(ids, cookies, strict=True)
        )
        rng = random.Random(7)
        store.upsert_golden_profiles(
            {
                "identity_id": i,
                "country": rng.choice(["US", "US", "CA", "GB"]),
                "dob": date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)),
                "record_count": 1,
            }
            for i in ids
        )


class Traffic:
    """Generated event messages of the seeded people; about 1% malformed."""

    def __init__(self, people: int, seed: int = 11) -> None:
        self.people = people
        self.rng = np.random.default_rng(seed)
        self.seq = 0

    def batch(self, n: int, now: datetime) -> list[tuple[bytes, bytes]]:
        who = self.rng.integers(0, self.people, n)
        kind = self.rng.random(n)
        cat = self.rng.integers(0, len(CATEGORIES), n)
        bad = self.rng.random(n) < 0.01
        ts = (now - timedelta(seconds=1)).isoformat()
        out = []
        for i in range(n):
            self.seq += 1
            anon = f"anon-{who[i]}"
            if bad[i]:
                out.append((anon.encode(), MALFORMED[self.seq % len(MALFORMED)]))
                continue
            event: dict = {"event_id": f"b{self.seq}", "ts": ts, "anonymous_id": anon}
            if kind[i] < 0.85:
                event.update(type="page_view", properties={"category": CATEGORIES[cat[i]]})
            elif kind[i] < 0.95:
                event.update(type="ad_click", properties={"campaign": CAMPAIGNS[cat[i] % len(CAMPAIGNS)]})
            else:
                event.update(type="purchase", properties={"category": CATEGORIES[cat[i]], "price": 25.0})
            out.append((anon.encode(), json.dumps(event, separators=(",", ":")).encode()))
        return out


def marker_event(k: int, now: datetime) -> tuple[bytes, bytes]:
    anon = f"anon-marker-{k}"
    event = {
        "event_id": f"marker-{k}",
        "type": "purchase",
        "ts": now.isoformat(),
        "anonymous_id": anon,
        "properties": {"category": "luxury", "price": 600.0},
    }
    return anon.encode(), json.dumps(event, separators=(",", ":")).encode()


class Watcher(threading.Thread):
    """A separate store connection polling for the markers in the aggregates and the segment."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.pending: set[str] = set()
        self.seen_aggregates: dict[str, float] = {}
        self.seen_segment: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def add(self, identity: str) -> None:
        with self.lock:
            self.pending.add(identity)

    def run(self) -> None:
        with open_store(self.url) as store:
            ph = store.placeholder
            while not self.stop.is_set():
                with self.lock:
                    waiting = sorted(self.pending)
                if waiting:
                    marks = ", ".join([ph] * len(waiting))
                    agg = store.query(
                        f"SELECT DISTINCT identity_id FROM event_aggregates WHERE identity_id IN ({marks}) "
                        f"AND category = {ph}",
                        [*waiting, "luxury"],
                    )
                    seg = store.query(
                        f"SELECT identity_id FROM segment_members WHERE segment_id = {ph} AND identity_id IN ({marks})",
                        [SEGMENT, *waiting],
                    )
                    now = time.time()
                    with self.lock:
                        for (i,) in agg:
                            self.seen_aggregates.setdefault(i, now)
                        for (i,) in seg:
                            self.seen_segment.setdefault(i, now)
                            # One transaction makes both visible: a commit between the two
                            # reads shows the segment row first, the aggregate row with it.
                            self.seen_aggregates.setdefault(i, now)
                            self.pending.discard(i)
                time.sleep(0.1)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, required=True, help="events per second to publish")
    parser.add_argument("--seconds", type=float, required=True, help="how long to publish")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--store", choices=["sqlite", "mariadb"], default="sqlite")
    parser.add_argument(
        "--reader",
        choices=["confluent", "kafka-python"],
        default="confluent",
        help="the service's Kafka client",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=180.0, help="seconds to wait for the service to catch up"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="idr-freshness-"))
    suffix = uuid.uuid4().hex[:8]
    bootstrap = services.up(only=["kafka"])["kafka"]["bootstrap"]
    markers = int(args.seconds) + 1
    with ExitStack() as stack:
        if args.store == "mariadb":
            base = services.up(only=["mariadb"])["mariadb"]["url"]
            store_url = stack.enter_context(throwaway_database(base, prefix="idr_bench"))
        else:
            store_url = f"sqlite:///{work / 'store.db'}"
        env = {
            **os.environ,
            "IDR_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "IDR_EVENTS_TOPIC": f"bench.events.{suffix}",
            "IDR_PROFILES_TOPIC": f"bench.profiles.{suffix}",
            "IDR_LAKE_URI": (work / "lake").as_uri(),
            "IDR_STORE_URL": store_url,
            "IDR_TOPIC_PARTITIONS": str(args.partitions),
            "IDR_STREAM_READER": args.reader,
        }
        env.pop("DAGSTER_HOME", None)
        topic = env["IDR_EVENTS_TOPIC"]
        ensure_topics(bootstrap, [topic, env["IDR_PROFILES_TOPIC"]], partitions=args.partitions)
        t = time.perf_counter()
        seed_store(store_url, args.people, markers)
        seed_s = time.perf_counter() - t

        log_path = work / "stream.log"
        log = open(log_path, "w")
        service = subprocess.Popen(
            [sys.executable, "-m", "idr_pipeline.cli.app", "stream", "run", "--no-report"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        stack.callback(lambda: service.poll() is None and service.send_signal(signal.SIGTERM))
        deadline = time.time() + 120
        while "stream service running" not in log_path.read_text():
            if service.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the stream service did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)

        watcher = Watcher(store_url)
        watcher.start()
        producer = ck.Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 262144, "acks": "all"}
        )
        failures: list[str] = []
        marker_offsets: dict[str, tuple[int, int]] = {}

        def on_delivery(err, msg) -> None:
            if err is not None:
                failures.append(str(err))
            elif msg.key() and msg.key().startswith(b"anon-marker-"):
                marker_offsets[msg.key().decode()] = (msg.partition(), msg.offset())

        traffic = Traffic(args.people)
        sent = 0
        marker_sent: dict[str, float] = {}
        samples: list[tuple[float, int, int]] = []  # (t, producer queue, consumer lag)
        started = time.time()
        next_sample = started
        tick = 0.01
        while (elapsed := time.time() - started) < args.seconds:
            due = int(elapsed * args.rate) - sent
            if due > 0:
                now = datetime.now(UTC)
                for key, value in traffic.batch(due, now):
                    while True:
                        try:
                            producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                            break
                        except BufferError:
                            producer.poll(0.01)
                sent += due
            k = len(marker_sent)
            if elapsed >= k and k < markers:
                key, value = marker_event(k, datetime.now(UTC))
                marker_sent[f"marker{k:05d}"] = time.time()
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                watcher.add(f"marker{k:05d}")
            producer.poll(0)
            if time.time() >= next_sample:
                samples.append((time.time() - started, len(producer), _lag(bootstrap, store_url, topic)))
                next_sample += 2.0
            time.sleep(tick)
        producer.flush(60)
        publish_s = time.time() - started
        published = sent + len(marker_sent)

        drain_deadline = time.time() + args.drain_timeout
        while time.time() < drain_deadline:
            lag = _lag(bootstrap, store_url, topic)
            samples.append((time.time() - started, len(producer), lag))
            with watcher.lock:
                done = not watcher.pending
            if lag == 0 and done:
                break
            time.sleep(2.0)
        watcher.stop.set()
        watcher.join()
        service.send_signal(signal.SIGTERM)
        service.wait(60)

        with open_store(store_url) as store:
            ranges = store.select_rows("stream_ranges", {"topic": topic})
        landed_at: dict[str, float] = {}
        for key, (partition, offset) in marker_offsets.items():
            for r in ranges:
                if r["kafka_partition"] == partition and r["first_offset"] <= offset <= r["last_offset"]:
                    landed_at[key] = datetime.fromisoformat(r["counts"]["landed_at"]).timestamp()
        accounted = sum(int(r["messages"]) for r in ranges)
        dead = sum(int(r["dead"]) for r in ranges)
        applied = [r["applied_at"].replace(tzinfo=UTC).timestamp() for r in ranges]
        last_applied = max(applied) if applied else started
        sustained = accounted / (last_applied - started) if last_applied > started else 0.0

        print(
            f"broker {bootstrap} (Tansu), {args.partitions} partitions; reader {args.reader}; store {args.store}; {args.people:,} people "
            f"seeded in {seed_s:.1f} s; service log {log_path}"
        )
        print(f"{'marker':>12} {'sent_s':>7} {'landed_s':>9} {'aggregates_s':>13} {'segment_s':>10}")
        lags: dict[str, list[float]] = {"landed": [], "aggregates": [], "segment": []}
        for ident, sent_at in sorted(marker_sent.items()):
            key = f"anon-marker-{int(ident[6:])}"
            row = {
                "landed": landed_at.get(key),
                "aggregates": watcher.seen_aggregates.get(ident),
                "segment": watcher.seen_segment.get(ident),
            }
            cells = []
            for stage, seen in row.items():
                if seen is None:
                    cells.append("missing")
                else:
                    lags[stage].append(seen - sent_at)
                    cells.append(f"{seen - sent_at:.2f}")
            print(f"{ident:>12} {sent_at - started:7.1f} {cells[0]:>9} {cells[1]:>13} {cells[2]:>10}")
        print("identity change feed: not available yet (skipped)")
        for stage, values in lags.items():
            print(
                f"{stage:>10} lag s: p50 {percentile(values, 50):.2f}  p95 {percentile(values, 95):.2f}  "
                f"max {max(values) if values else float('nan'):.2f}  ({len(values)}/{len(marker_sent)} markers)"
            )
        queue = [q for _, q, _ in samples]
        lag_values = [lag for _, _, lag in samples if lag >= 0]
        print(
            f"published {published:,} in {publish_s:.1f} s ({published / publish_s:,.0f}/s); "
            f"delivery failures {len(failures)}"
        )
        print(f"producer queue depth: max {max(queue) if queue else 0:,}, last {queue[-1] if queue else 0:,}")
        print(
            f"consumer lag (messages): max {max(lag_values) if lag_values else 0:,}, "
            f"at end of publishing {_lag_at(samples, publish_s):,}, final {lag_values[-1] if lag_values else 0:,}"
        )
        print(f"accounted: {accounted:,} messages in {len(ranges)} ranges ({dead:,} dead letters)")
        lost = published - len(failures) - accounted
        missing = len(marker_sent) - len(lags["segment"])
        p95 = percentile(lags["segment"], 95) if not missing else float("inf")
        print(f"p95_segment_lag_s={p95:.2f} sustained_events_per_s={sustained:.1f} lost={lost}")


def _lag(bootstrap: str, store_url: str, topic: str) -> int:
    try:
        _, high = watermarks(bootstrap, topic)
        with open_store(store_url) as store:
            rows = store.select_rows("stream_offsets", {"topic": topic})
        positions = {int(r["kafka_partition"]): int(r["next_offset"]) for r in rows}
        return sum(max(0, h - positions.get(p, 0)) for p, h in high.items())
    except Exception:  # a sample lost to a busy broker is not a result
        return -1


def _lag_at(samples: list[tuple[float, int, int]], t: float) -> int:
    before = [lag for s, _, lag in samples if s <= t and lag >= 0]
    return before[-1] if before else 0


if __name__ == "__main__":
    main()
