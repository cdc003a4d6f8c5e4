"""The stream half of the demo's summary reports each lookalike's lift."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from idr_pipeline.devtools.stream_demo import StreamDemo, format_stream_demo, lift_horizon_days
from idr_pipeline.segments.lookalike_lift import LiftReport


def test_summary_prints_lookalike_members_and_lift() -> None:
    report = LiftReport(
        segment_id="luxury_buyers_lookalike",
        seed_id="luxury_buyers",
        start=datetime(2025, 5, 29, tzinfo=UTC),
        end=datetime(2025, 6, 1, tzinfo=UTC),
        universe=1000,
        seed_at_start=10,
        seed_with_behavior=10,
        pool=400,
        expansion=10,
        joiners=6,
        joiners_in_pool=4,
        hits=3,
        random_hits=0.1,
        lowest_score=0.2,
    )
    demo = StreamDemo(
        bootstrap="127.0.0.1:9092",
        published=10,
        messages=10,
        valid=10,
        dead=0,
        partitions=1,
        ingest_seconds=1.0,
        stitched_share=1.0,
        merges=0,
        segment_sizes={"luxury_buyers": 12, "luxury_buyers_lookalike": 10},
        universe=1000,
        lookalike_lift=[report],
    )
    text = format_stream_demo(demo)
    assert re.search(r"\n  luxury_buyers_lookalike\s+10  \(1\.00%\)\n", text)
    assert "lookalike lift over a random expansion:" in text
    # precision 3/10 over a base rate of 4/400: 30x
    assert "3 of them in the expansion" in text and "lift 30.0x" in text
    nobody = format_stream_demo(
        StreamDemo(
            **{**demo.__dict__, "lookalike_lift": [LiftReport(**{**report.__dict__, "joiners_in_pool": 0})]}
        )
    )
    assert "n/a (nobody joined the seed)" in nobody
    assert lift_horizon_days(7) == 3 and lift_horizon_days(1) == 1
