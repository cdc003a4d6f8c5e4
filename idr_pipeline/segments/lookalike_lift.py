"""How well a lookalike predicts who joins its seed later: its lift over a random expansion.

As of ``start`` the seed's members are evaluated and expanded by the lookalike; as of ``end``
the seed is evaluated again. The people who joined the seed in between, outside it at
``start``, are what an advertiser would have wanted the expansion to reach. The lookalike's
share of them (precision) is compared with that of random expansions of the same size drawn
from the same pool: identities outside the seed that had a behavior vector at ``start`` (what
the lookalike could pick from; a random pick among all active identities does worse still, and
is reported too). Lift is the lookalike's precision over the pool's base rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from pyspark.sql import DataFrame, SparkSession

from idr_pipeline.core.lake import Lake
from idr_pipeline.segments.behavior import BEHAVIOR_DAYS, assign_prototype
from idr_pipeline.segments.behavior_index import BehaviorIndex
from idr_pipeline.segments.dsl import LookalikeSegment, PrototypeSegment, RuleSegment, SegmentCatalog
from idr_pipeline.segments.lookalike import expand
from idr_pipeline.segments.resolved_events import as_of_end
from idr_pipeline.segments.rules_spark import RuleInputs, evaluate_rule
from idr_pipeline.segments.steps import (
    MEMBER_SCHEMA,
    catalog_lookback,
    compute_behavior,
    load_catalog,
    load_inputs,
)

#: Random expansions drawn for the baseline (their mean hits; the expectation is exact too).
RANDOM_DRAWS = 200


@dataclass
class LiftReport:
    segment_id: str
    seed_id: str
    start: datetime
    end: datetime
    universe: int
    seed_at_start: int
    seed_with_behavior: int
    pool: int
    expansion: int
    joiners: int
    joiners_in_pool: int
    hits: int
    random_hits: float
    #: The least cosine to the seed's centroid among the expansion (None when it is empty).
    lowest_score: float | None = None

    @property
    def precision(self) -> float:
        return self.hits / self.expansion if self.expansion else 0.0

    @property
    def base_rate(self) -> float:
        return self.joiners_in_pool / self.pool if self.pool else 0.0

    @property
    def universe_rate(self) -> float:
        outside = self.universe - self.seed_at_start
        return self.joiners / outside if outside > 0 else 0.0

    @property
    def lift(self) -> float | None:
        """Precision over the pool's base rate; None when nobody joined (nothing to find)."""
        return self.precision / self.base_rate if self.base_rate else None

    @property
    def recall(self) -> float:
        return self.hits / self.joiners if self.joiners else 0.0

    def summary(self) -> str:
        lift = f"{self.lift:.1f}x" if self.lift is not None else "n/a (nobody joined the seed)"
        days = (self.end - self.start) / timedelta(days=1)
        return (
            f"{self.segment_id}: {self.expansion:,} expanded from {self.seed_at_start:,} {self.seed_id} "
            f"members as of {self.start:%Y-%m-%d}; {self.joiners:,} joined {self.seed_id} in the next "
            f"{days:g} days, {self.hits:,} of them in the expansion (precision {self.precision:.1%}, "
            f"recall {self.recall:.1%}) against {self.random_hits:.1f} in a random expansion of the same "
            f"size (base rate {self.base_rate:.2%}): lift {lift}"
        )


def _members_at(
    segment_id: str,
    catalog: SegmentCatalog,
    events: DataFrame,
    profiles: DataFrame,
    universe: DataFrame,
    end: datetime,
    vectorizer: str,
    done: dict[str, set[str]],
) -> set[str]:
    """The members of a rule or prototype segment (and what it refers to) as of ``end``."""
    if segment_id in done:
        return done[segment_id]
    segment = catalog.by_id()[segment_id]
    spark = events.sparkSession

    def members_of(other: str) -> DataFrame:
        ids = _members_at(other, catalog, events, profiles, universe, end, vectorizer, done)
        return spark.createDataFrame([(i, 1.0) for i in sorted(ids)], MEMBER_SCHEMA)

    if isinstance(segment, RuleSegment):
        rows = evaluate_rule(segment.rule, RuleInputs(events, profiles, universe, end, members_of)).collect()
        found = {r["identity_id"] for r in rows}
    elif isinstance(segment, PrototypeSegment):
        behavior = compute_behavior(events, end, vectorizer, segment.within_days)
        found = set(assign_prototype(behavior, segment)["identity_id"])
    else:
        raise ValueError(f"the lift of a lookalike seeded by lookalike {segment_id!r} is not measured")
    done[segment_id] = found
    return found


@dataclass
class LiftSetup:
    """What every expansion of one seed between two instants is scored against."""

    seed_id: str
    start: datetime
    end: datetime
    universe: set[str]
    before: set[str]
    joiners: set[str]
    index: BehaviorIndex
    pool: list[str]

    def measure(self, segment: LookalikeSegment, seed: int = 0) -> LiftReport:
        """The lookalike ``segment`` (seeded by ``seed_id``) expanded as of ``start``, scored."""
        if segment.seed != self.seed_id:
            raise ValueError(f"{segment.id} is seeded by {segment.seed}, not {self.seed_id}")
        expansion = expand(
            self.index,
            self.before,
            segment.size.members(len(self.universe)),
            segment.min_similarity,
            eligible=self.universe.intersection,
        )
        chosen = set(expansion["identity_id"])
        in_pool = np.isin(np.asarray(self.pool, dtype=object), list(self.joiners))
        rng = np.random.default_rng(seed)
        draws = [
            int(
                in_pool[
                    rng.choice(len(self.pool), size=min(len(chosen), len(self.pool)), replace=False)
                ].sum()
            )
            for _ in range(RANDOM_DRAWS if self.pool and chosen else 0)
        ]
        return LiftReport(
            segment_id=segment.id,
            seed_id=self.seed_id,
            start=self.start,
            end=self.end,
            universe=len(self.universe),
            seed_at_start=len(self.before),
            seed_with_behavior=sum(1 for i in self.before if i in self.index),
            pool=len(self.pool),
            expansion=len(chosen),
            joiners=len(self.joiners),
            joiners_in_pool=int(in_pool.sum()),
            hits=len(chosen & self.joiners),
            random_hits=float(np.mean(draws)) if draws else 0.0,
            lowest_score=float(expansion["score"].min()) if len(expansion) else None,
        )


def prepare_lift(
    events: DataFrame,
    profiles: DataFrame,
    universe: DataFrame,
    seed_id: str,
    catalog: SegmentCatalog,
    start: datetime,
    end: datetime,
    *,
    vectorizer: str = "tokens",
) -> LiftSetup:
    """The seed as of ``start`` and ``end``, who joined in between, and the behavior index as
    of ``start``. ``events`` are resolved events (``identity_id``) covering both instants'
    windows; ``universe`` the active identities."""
    universe_ids = {r[0] for r in universe.collect()}
    before = _members_at(seed_id, catalog, events, profiles, universe, start, vectorizer, {})
    after = _members_at(seed_id, catalog, events, profiles, universe, end, vectorizer, {})
    index = BehaviorIndex.build(compute_behavior(events, start, vectorizer))
    pool = sorted(i for i in index.identities() if i in universe_ids and i not in before)
    return LiftSetup(seed_id, start, end, universe_ids, before, (after - before) & universe_ids, index, pool)


def measure_lift(
    events: DataFrame,
    profiles: DataFrame,
    universe: DataFrame,
    segment: LookalikeSegment,
    catalog: SegmentCatalog,
    start: datetime,
    end: datetime,
    *,
    vectorizer: str = "tokens",
    seed: int = 0,
) -> LiftReport:
    """The lookalike ``segment`` evaluated as of ``start``, scored against who joined its seed
    by ``end`` (see ``prepare_lift``)."""
    setup = prepare_lift(events, profiles, universe, segment.seed, catalog, start, end, vectorizer=vectorizer)
    return setup.measure(segment, seed)


def catalog_lift(
    spark: SparkSession,
    lake: Lake,
    as_of: date | datetime,
    horizon_days: int,
    *,
    catalog: SegmentCatalog | None = None,
    vectorizer: str = "tokens",
) -> list[LiftReport]:
    """The lift of every lookalike of the catalog over the ``horizon_days`` before ``as_of``,
    from the lake's landed events and identities (what ``idr demo`` reports)."""
    catalog = catalog or load_catalog()
    lookalikes = [s for s in catalog.segments if isinstance(s, LookalikeSegment)]
    if not lookalikes:
        return []
    end = as_of_end(as_of)
    inputs = load_inputs(spark, lake, end, max(catalog_lookback(catalog), BEHAVIOR_DAYS) + horizon_days)
    try:
        start = end - timedelta(days=horizon_days)
        return [
            measure_lift(
                inputs.events, inputs.profiles, inputs.universe, s, catalog, start, end, vectorizer=vectorizer
            )
            for s in lookalikes
        ]
    finally:
        inputs.release()
