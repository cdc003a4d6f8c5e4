"""Rule segments on Spark: each DSL node compiles to DataFrame operations, never to SQL text.

Every node evaluates to the set of identity ids it selects (one column, distinct). Leaves are
filters and aggregations over events or golden profiles; ``all``/``any``/``not`` are semi
joins, unions and anti joins. Values from an expression only ever reach Spark as literals in
column expressions, so a category named ``x' OR 1=1`` is a category that matches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from idr_pipeline.segments.dsl import (
    BEHAVIOR_LEAVES,
    LEAF_EVENT_TYPE,
    Age,
    All,
    AnyOf,
    Attribute,
    Clicked,
    Expression,
    InSegment,
    Not,
    Purchased,
    behavior_args,
)
from idr_pipeline.segments.resolved_events import in_window

ID = "identity_id"


@dataclass
class RuleInputs:
    """What a rule can see, as of one instant.

    ``events``: resolved events (``identity_id``, ``type``, ``ts``, ``category``, ``campaign``,
    ``product_id``, ``price``); unresolved rows are ignored. ``profiles``: golden profiles
    (``identity_id``, ``country``, ``state``, ``city``, ``postcode``, ``dob``). ``universe``:
    the active identities, what ``not`` complements against. ``members``: current members of
    other segments by segment id, for ``in_segment``.
    """

    events: DataFrame
    profiles: DataFrame
    universe: DataFrame
    end: datetime
    members: Mapping[str, DataFrame] | Callable[[str], DataFrame] = field(default_factory=dict)

    def members_of(self, segment_id: str) -> DataFrame:
        if callable(self.members):
            return self.members(segment_id)
        if segment_id not in self.members:
            raise KeyError(f"no members known for segment {segment_id!r}")
        return self.members[segment_id]

    @property
    def as_of_date(self) -> Column:
        """The calendar day of the as-of instant (the end is exclusive, hence the microsecond)."""
        return F.to_date(F.lit(self.end - timedelta(microseconds=1)))


def _equals_ci(column: str, value: str) -> Column:
    return F.lower(F.col(column)) == F.lit(value.lower())


def _behavior(leaf: Expression, inputs: RuleInputs) -> DataFrame:
    args = behavior_args(leaf)  # type: ignore[arg-type]
    cond = (
        F.col(ID).isNotNull()
        & (F.col("type") == F.lit(LEAF_EVENT_TYPE[type(leaf)]))
        & in_window(inputs.end, args.within_days)
    )
    if args.category is not None:
        cond &= _equals_ci("category", args.category)
    if isinstance(leaf, Clicked) and leaf.clicked.campaign is not None:
        cond &= _equals_ci("campaign", leaf.clicked.campaign)
    if isinstance(leaf, Purchased) and leaf.purchased.product_id is not None:
        cond &= F.col("product_id") == F.lit(leaf.purchased.product_id)
    grouped = (
        inputs.events.where(cond)
        .groupBy(ID)
        .agg(F.count(F.lit(1)).alias("_n"), F.coalesce(F.sum("price"), F.lit(0.0)).alias("_total"))
    )
    having = F.col("_n") >= F.lit(args.min_count)
    if isinstance(leaf, Purchased) and leaf.purchased.min_total is not None:
        having &= F.col("_total") >= F.lit(float(leaf.purchased.min_total))
    return grouped.where(having).select(ID)


def _attribute(leaf: Attribute, inputs: RuleInputs) -> DataFrame:
    wanted = sorted({v.strip().upper() for v in leaf.attribute.in_})
    return inputs.profiles.where(F.upper(F.trim(F.col(leaf.attribute.field))).isin(wanted)).select(ID)


def age_years(dob: Column, on: Column) -> Column:
    """Whole years between ``dob`` and ``on``: the birthday must have been reached this year."""
    before_birthday = (F.month(on) < F.month(dob)) | (
        (F.month(on) == F.month(dob)) & (F.dayofmonth(on) < F.dayofmonth(dob))
    )
    return F.year(on) - F.year(dob) - F.when(before_birthday, 1).otherwise(0)


def _age(leaf: Age, inputs: RuleInputs) -> DataFrame:
    dob = F.try_to_date(F.col("dob").cast("string"))
    age = age_years(dob, inputs.as_of_date)
    cond = dob.isNotNull()
    if leaf.age.min is not None:
        cond &= age >= F.lit(leaf.age.min)
    if leaf.age.max is not None:
        cond &= age <= F.lit(leaf.age.max)
    return inputs.profiles.where(cond).select(ID)


def _semi(left: DataFrame, right: DataFrame) -> DataFrame:
    return left.join(right, ID, "left_semi")


def _anti(left: DataFrame, right: DataFrame) -> DataFrame:
    return left.join(right, ID, "left_anti")


def _all(node: All, inputs: RuleInputs) -> DataFrame:
    # Negated terms subtract from the positive ones instead of being complemented against the
    # whole universe first: "bought in 90 days and not in 30" scans buyers, not everyone.
    positive = [c for c in node.all if not isinstance(c, Not)]
    negative = [c.not_ for c in node.all if isinstance(c, Not)]
    base = reduce(_semi, [compile_node(c, inputs) for c in positive]) if positive else inputs.universe
    return reduce(_anti, [compile_node(c, inputs) for c in negative], base)


def compile_node(node: Expression, inputs: RuleInputs) -> DataFrame:
    """The distinct identity ids ``node`` selects (not yet restricted to the universe)."""
    if isinstance(node, BEHAVIOR_LEAVES):
        return _behavior(node, inputs)
    if isinstance(node, Attribute):
        return _attribute(node, inputs)
    if isinstance(node, Age):
        return _age(node, inputs)
    if isinstance(node, InSegment):
        return inputs.members_of(node.in_segment).select(ID).distinct()
    if isinstance(node, All):
        return _all(node, inputs)
    if isinstance(node, AnyOf):
        return reduce(DataFrame.unionByName, [compile_node(c, inputs) for c in node.any]).distinct()
    if isinstance(node, Not):
        return _anti(inputs.universe, compile_node(node.not_, inputs))
    raise TypeError(f"unknown expression node {type(node).__name__}")


def evaluate_rule(expr: Expression, inputs: RuleInputs) -> DataFrame:
    """Members of a rule segment: ``identity_id`` and ``score`` (1.0: rules are yes or no)."""
    return _semi(compile_node(expr, inputs), inputs.universe).select(ID, F.lit(1.0).alias("score"))
