"""Compile a typed audience expression into one parameterised query against the store.

The client sends the DSL of :mod:`idr_pipeline.segments.dsl`, never SQL. Every node becomes
``i.identity_id IN (<subquery>)`` over the active identities, combined with AND/OR/NOT, so the
same text runs on SQLite and MariaDB/SingleStore (no INTERSECT/EXCEPT, which MariaDB only
gained late). Only table and column names from :mod:`idr_pipeline.store.tables` reach the SQL
text; every value is a placeholder.

Behavioral leaves (purchased/clicked/viewed) read ``event_aggregates``, which the feature step
publishes from the same resolved events the Spark rules read (see
:mod:`idr_pipeline.segments.aggregates`): each leaf is one ``GROUP BY identity_id HAVING``
subquery over the aggregates of its event type and window, so it answers as the Spark segment
evaluator would as of that publish's instant (``events_as_of``). They are what makes a query
expensive, so an expression may hold at most MAX_BEHAVIOR_LEAVES of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from idr_pipeline.segments.dsl import (
    BEHAVIOR_LEAVES,
    LEAF_EVENT_TYPE,
    Age,
    All,
    AnyOf,
    Attribute,
    Clicked,
    Expression,
    ExpressionTooCostly,
    InSegment,
    Not,
    Purchased,
    Viewed,
    behavior_args,
    check_cost,
    walk,
)
from idr_pipeline.store.tables import (
    ACTIVE,
    EVENT_AGGREGATE_RUNS,
    EVENT_AGGREGATES,
    GOLDEN_PROFILES,
    IDENTITIES,
    SEGMENT_MEMBERS,
    TABLES,
)

#: Bound values one query may carry: below SQLite's 32766-parameter limit with room to spare.
MAX_PARAMETERS = 2000

#: Behavioral leaves one query may hold: each is a GROUP BY over a window of event aggregates,
#: where the other leaves are index look-ups.
MAX_BEHAVIOR_LEAVES = 8


@dataclass
class CompiledAudience:
    """The WHERE predicate over ``identities i`` and its parameters, in placeholder order."""

    predicate: str
    params: list[Any] = field(default_factory=list)

    def count_sql(self) -> tuple[str, list[Any]]:
        return f"SELECT COUNT(*) FROM {IDENTITIES.name} i WHERE {self.predicate}", list(self.params)

    def page_sql(self, placeholder: str, limit: int, after: str | None) -> tuple[str, list[Any]]:
        """One page of identity ids in id order: keyset pagination, so deep pages cost the same."""
        sql = f"SELECT i.identity_id FROM {IDENTITIES.name} i WHERE {self.predicate}"
        params = list(self.params)
        if after is not None:
            sql += f" AND i.identity_id > {placeholder}"
            params.append(after)
        return f"{sql} ORDER BY i.identity_id LIMIT {int(limit)}", params


def _age_bounds(args_min: int | None, args_max: int | None, today: date) -> tuple[str | None, str | None]:
    """(latest dob, earliest exclusive dob) as ISO text: age >= min and age <= max on ``today``."""

    def years_before(years: int) -> date:
        try:
            return today.replace(year=today.year - years)
        except ValueError:  # 29 February in a non-leap target year
            return today.replace(year=today.year - years, day=28)

    latest = years_before(args_min).isoformat() if args_min is not None else None
    earliest = years_before(args_max + 1).isoformat() if args_max is not None else None
    return latest, earliest


class _Compiler:
    def __init__(self, placeholder: str, today: date, scope: str | None = None) -> None:
        self.ph = placeholder
        self.today = today
        self.params: list[Any] = []
        # "AND identity_id IN (<scope>)" inside every subquery, or nothing.
        self.within = f" AND identity_id IN (SELECT identity_id FROM {scope})" if scope else ""

    def _marks(self, values: list[Any]) -> str:
        self.params.extend(values)
        return ", ".join([self.ph] * len(values))

    def node(self, expr: Expression) -> str:
        if isinstance(expr, All):
            return "(" + " AND ".join(self.node(c) for c in expr.all) + ")"
        if isinstance(expr, AnyOf):
            return "(" + " OR ".join(self.node(c) for c in expr.any) + ")"
        if isinstance(expr, Not):
            return f"(NOT {self.node(expr.not_)})"
        if isinstance(expr, Attribute):
            column = GOLDEN_PROFILES.column(expr.attribute.field).name  # KeyError if unknown
            values = sorted({v.strip().upper() for v in expr.attribute.in_})
            return (
                f"i.identity_id IN (SELECT identity_id FROM {GOLDEN_PROFILES.name} "
                f"WHERE UPPER({column}) IN ({self._marks(values)}){self.within})"
            )
        if isinstance(expr, Age):
            latest, earliest = _age_bounds(expr.age.min, expr.age.max, self.today)
            conditions = ["dob IS NOT NULL"]
            if latest is not None:
                conditions.append(f"dob <= {self._marks([latest])}")
            if earliest is not None:
                conditions.append(f"dob > {self._marks([earliest])}")
            return (
                f"i.identity_id IN (SELECT identity_id FROM {GOLDEN_PROFILES.name} "
                f"WHERE {' AND '.join(conditions)}{self.within})"
            )
        if isinstance(expr, InSegment):
            return (
                f"i.identity_id IN (SELECT identity_id FROM {SEGMENT_MEMBERS.name} "
                f"WHERE segment_id = {self._marks([expr.in_segment])}{self.within})"
            )
        if isinstance(expr, BEHAVIOR_LEAVES):
            return self.behavior(expr)
        raise TypeError(f"unknown expression node {type(expr).__name__}")  # pragma: no cover

    def behavior(self, leaf: Purchased | Clicked | Viewed) -> str:
        """Identities with at least min_count events (and min_total spent) of the leaf's kind.

        Values are compared as the Spark evaluator compares them: category and campaign
        lower-cased (the aggregates hold them lower-cased), the product id exactly.
        """
        args = behavior_args(leaf)
        where = [
            f"event_type = {self._marks([LEAF_EVENT_TYPE[type(leaf)]])}",
            f"days_ago < {self._marks([args.within_days])}",
        ]
        if args.category is not None:
            where.append(f"category = {self._marks([args.category.lower()])}")
        if isinstance(leaf, Clicked) and leaf.clicked.campaign is not None:
            where.append(f"campaign = {self._marks([leaf.clicked.campaign.lower()])}")
        if isinstance(leaf, Purchased) and leaf.purchased.product_id is not None:
            where.append(f"product_id = {self._marks([leaf.purchased.product_id])}")
        having = [f"SUM(events) >= {self._marks([args.min_count])}"]
        if isinstance(leaf, Purchased) and leaf.purchased.min_total is not None:
            having.append(f"SUM(amount) >= {self._marks([float(leaf.purchased.min_total)])}")
        return (
            f"i.identity_id IN (SELECT identity_id FROM {EVENT_AGGREGATES.name} "
            f"WHERE {' AND '.join(where)}{self.within} GROUP BY identity_id HAVING {' AND '.join(having)})"
        )


def behavior_leaves(expr: Expression) -> int:
    return sum(isinstance(n, BEHAVIOR_LEAVES) for n in walk(expr))


def check_audience_cost(expr: Expression) -> None:
    """The DSL's node and depth limits, and at most MAX_BEHAVIOR_LEAVES behavioral leaves."""
    check_cost(expr)
    n = behavior_leaves(expr)
    if n > MAX_BEHAVIOR_LEAVES:
        raise ExpressionTooCostly(
            f"expression has {n} behavioral conditions; the limit is {MAX_BEHAVIOR_LEAVES}"
        )


def events_as_of_sql() -> str:
    """The instant the served event aggregates count back from (NULL before the first publish)."""
    return f"SELECT MAX(as_of) FROM {EVENT_AGGREGATE_RUNS.name}"


def as_datetime(value: Any) -> datetime | None:
    """A DATETIME as the backend hands it back: a datetime (MySQL) or ISO text (SQLite)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def compile_audience(
    expr: Expression, placeholder: str = "?", today: date | None = None, scope: str | None = None
) -> CompiledAudience:
    """The predicate selecting active identities that satisfy ``expr``.

    ``scope`` names a table of the store (in TABLES) with an ``identity_id`` column: every
    subquery then reads only those identities' rows, so asking about a few identities costs
    their rows rather than whole tables. The answer for an identity in the scope is the same;
    callers must ask only about identities in it (the stream service's touched identities).

    Raises ExpressionTooCostly past the DSL's node/depth limits, MAX_BEHAVIOR_LEAVES
    behavioral leaves or MAX_PARAMETERS bound values.
    """
    check_audience_cost(expr)
    if scope is not None:
        TABLES[scope].column("identity_id")  # KeyError unless a store table with identity ids
    compiler = _Compiler(placeholder, today or date.today(), scope)
    status = compiler._marks([ACTIVE])
    body = compiler.node(expr)
    if len(compiler.params) > MAX_PARAMETERS:
        raise ExpressionTooCostly(
            f"expression binds {len(compiler.params)} values; the limit is {MAX_PARAMETERS}"
        )
    return CompiledAudience(predicate=f"i.status = {status} AND {body}", params=compiler.params)
