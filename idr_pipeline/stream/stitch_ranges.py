"""Feed the landed stream ranges into the incremental identity graph, each range once.

The stitcher itself (:mod:`idr_pipeline.stream.stitch`) is idempotent, but
replaying every landed range on every run would make a run's cost grow with the topic's
history. The ranges already stitched are therefore kept in a small JSON ledger beside the
graph state, and a run takes only the ranges that landed since.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pandas as pd

from idr_pipeline.core.catalog import INCREMENTAL_GRAPH, RAW_EVENTS, RAW_PROFILE_STREAM
from idr_pipeline.core.lake import Lake
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.tombstones import store_tombstones
from idr_pipeline.stream.land import landed_partitions, read_partition
from idr_pipeline.stream.stitch import StitchResult, stitch_batch, stitched_share, store_resolver

LEDGER = "_STITCHED_RANGES.json"


@dataclass
class StitchRun:
    ranges: dict[str, list[str]] = field(default_factory=dict)  # dataset -> keys stitched now
    events: int = 0
    identify_events: int = 0
    profiles: int = 0
    stitched_share: float = 0.0
    result: StitchResult | None = None
    seconds: float = 0.0

    @property
    def merges(self) -> int:
        return 0 if self.result is None else len(self.result.merges)


def _read(lake_uri: str, dataset: str, keys: list[str]) -> pd.DataFrame:
    frames = [read_partition(lake_uri, dataset, k).to_pandas() for k in keys]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _ledger_path(lake: Lake) -> str:
    return lake.path(*INCREMENTAL_GRAPH, LEDGER)


def read_ledger(lake: Lake) -> dict[str, list[str]]:
    text = lake.read_text(_ledger_path(lake))
    return json.loads(text) if text else {}


def stitch_new_ranges(store: IdentityStore, lake: Lake) -> StitchRun:
    """Stitch the profile and identify events of every range landed since the last run."""
    started = time.perf_counter()
    ledger = read_ledger(lake)
    run = StitchRun()
    for dataset in (RAW_PROFILE_STREAM, RAW_EVENTS):
        done = set(ledger.get(dataset, []))
        run.ranges[dataset] = [k for k in landed_partitions(lake.uri, dataset) if k not in done]
    profiles = _read(lake.uri, RAW_PROFILE_STREAM, run.ranges[RAW_PROFILE_STREAM])
    events = _read(lake.uri, RAW_EVENTS, run.ranges[RAW_EVENTS])
    identify = events[events["type"] == "identify"] if len(events) else events
    run.events, run.identify_events, run.profiles = len(events), len(identify), len(profiles)
    if len(profiles) or len(identify):
        run.result = stitch_batch(
            store,
            lake,
            profiles if len(profiles) else None,
            identify if len(identify) else None,
            tombstones=store_tombstones(store),
        )
    if len(events):
        run.stitched_share = stitched_share(events, store_resolver(store))
    for dataset, keys in run.ranges.items():
        ledger[dataset] = sorted(set(ledger.get(dataset, [])) | set(keys))
    lake.write_text(_ledger_path(lake), json.dumps(ledger, sort_keys=True))
    run.seconds = time.perf_counter() - started
    return run
