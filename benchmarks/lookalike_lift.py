"""Does a lookalike audience reach the people who join its seed later? Lift over random.

    .venv/bin/python benchmarks/lookalike_lift.py --people 10000 --days 90 --horizon 14

Generates the click stream of ``idr generate-events`` (same generator, same seed) without
Kafka and attributes each event to its person through the person's cookies (the truth, so the
figure is about the lookalike, not about identity resolution). As of ``--horizon`` days before
the stream's end, the catalog's lookalike segment (``--segment``) expands its seed from the
behavior vectors of the 90 days before; as of the end, the seed is evaluated again. Printed
per expansion size: how many of the people who joined the seed in between the expansion holds,
against random expansions of the same size drawn from the identities outside the seed with a
behavior vector (the lookalike's own pool), and the lift (precision over that pool's base
rate). The rate among all identities outside the seed is printed too; it is lower, so lift
against it would be higher.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pandas as pd

from idr_pipeline.core.spark import get_spark
from idr_pipeline.devtools.synthetic.clickstream import _world, generate_event_stream
from idr_pipeline.segments.dsl import LookalikeSegment, LookalikeSize
from idr_pipeline.segments.lookalike_lift import prepare_lift
from idr_pipeline.segments.steps import load_catalog

UNTIL = datetime(2025, 6, 1, tzinfo=UTC)
EVENT_COLUMNS = "identity_id string, event_id string, type string, ts timestamp, category string, campaign string, product_id string, price double"
PROFILE_COLUMNS = "identity_id string, country string, state string, city string, postcode string, dob string"


def person_events(people: int, days: int, seed: int) -> pd.DataFrame:
    """Parsed events of the generated stream with the person (``p0000012``) who made them."""
    stream = generate_event_stream(people, days, seed=seed, until=UNTIL)
    folks = _world(people, seed).people
    owner = {str(a): i for i, a in enumerate(folks.anon) if a}
    owner.update({str(a): i for i, a in enumerate(folks.anon2) if a})
    rows = []
    for msg in stream.events:
        try:
            obj = json.loads(msg.value)
            ts = datetime.fromisoformat(obj["ts"].replace("Z", "+00:00"))
            person = owner.get(obj.get("anonymous_id", ""))
            props = obj.get("properties") or {}
            price = props.get("price")
            row = (
                obj["event_id"],
                obj["type"],
                ts,
                props.get("category"),
                props.get("campaign"),
                props.get("product_id"),
                float(price) if isinstance(price, int | float) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # the ~1% malformed messages the landing step dead-letters
        if person is not None and ts < UNTIL:
            rows.append((f"p{person:07d}", *row))
    cols = ["identity_id", "event_id", "type", "ts", "category", "campaign", "product_id", "price"]
    return pd.DataFrame(rows, columns=cols).drop_duplicates("event_id")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=90, help="days of events before the end")
    ap.add_argument("--horizon", type=int, default=14, help="days after the expansion in which joins count")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--segment", default="luxury_buyers_lookalike")
    ap.add_argument("--shares", default="0.005,0.01,0.02,0.05", help="expansion sizes besides the catalog's")
    args = ap.parse_args()

    catalog = load_catalog()
    segment = catalog.by_id()[args.segment]
    if not isinstance(segment, LookalikeSegment):
        raise SystemExit(f"{args.segment} is not a lookalike segment")
    t0 = time.perf_counter()
    events = person_events(args.people, args.days, args.seed)
    spark = get_spark()
    sdf = spark.createDataFrame(events, EVENT_COLUMNS).cache()
    people = [f"p{i:07d}" for i in range(args.people)]
    profiles = spark.createDataFrame([(p, None, None, None, None, None) for p in people], PROFILE_COLUMNS)
    universe = profiles.select("identity_id")
    start = UNTIL - timedelta(days=args.horizon)
    print(
        f"people {args.people:,}, {args.days} days of events ({len(events):,} attributed) ending "
        f"{UNTIL:%Y-%m-%d}; expansion as of {start:%Y-%m-%d}, joins counted over the next {args.horizon} days"
    )
    print(
        f"lookalike {segment.id}: seed {segment.seed}, catalog size {segment.size.model_dump(exclude_none=True)}, "
        f"min_similarity {segment.min_similarity}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
    )
    header = (
        f"{'size':>9} {'min sim':>7} {'members':>8} {'lowest':>6} {'hits':>5} {'random':>7} {'precision':>9} "
        f"{'base rate':>9} {'all rate':>8} {'recall':>7} {'lift':>6}"
    )
    print(header)
    print("-" * len(header))
    setup = prepare_lift(sdf, profiles, universe, segment.seed, catalog, start, UNTIL)
    extra = [LookalikeSize(share=float(s)) for s in args.shares.split(",") if s]
    sizes = [segment.size, *[s for s in extra if s != segment.size]]
    for size in sizes:
        for bound in sorted({segment.min_similarity, 0.0}, reverse=True):
            variant = segment.model_copy(update={"size": size, "min_similarity": bound})
            r = setup.measure(variant)
            label = f"{size.share:.1%}" if size.share is not None else str(size.count)
            lift = f"{r.lift:.1f}x" if r.lift is not None else "n/a"
            lowest = f"{r.lowest_score:.3f}" if r.lowest_score is not None else "-"
            print(
                f"{label:>9} {bound:>7.2f} {r.expansion:>8,} {lowest:>6} {r.hits:>5,} {r.random_hits:>7.1f} "
                f"{r.precision:>9.1%} {r.base_rate:>9.2%} {r.universe_rate:>8.2%} {r.recall:>7.1%} {lift:>6}"
            )
    print(
        f"\nseed as of the expansion: {r.seed_at_start:,} ({r.seed_with_behavior:,} with a behavior vector); "
        f"pool {r.pool:,}; joined by the end: {r.joiners:,} ({r.joiners_in_pool:,} from the pool); "
        f"{time.perf_counter() - t0:.0f} s in all"
    )


if __name__ == "__main__":
    main()
