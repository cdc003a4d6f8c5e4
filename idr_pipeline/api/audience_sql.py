"""Compile a typed audience expression into one parameterised query against the store.

The client sends the DSL of :mod:`idr_pipeline.segments.dsl`, never SQL. Every node becomes
``i.identity_id IN (<subquery>)`` over the active identities, combined with AND/OR/NOT, so the
same text runs on SQLite and MariaDB/SingleStore (no INTERSECT/EXCEPT, which MariaDB only
gained late). Only table and column names from :mod:`idr_pipeline.store.tables` reach the SQL
text; every value is a placeholder.

Behavioural leaves (purchased/clicked/viewed) need per-identity event aggregates the store does
not hold: those are computed by the Spark segment job, so the API refuses them and the caller
defines a segment instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from idr_pipeline.segments.dsl import (
    BEHAVIOUR_LEAVES,
    Age,
    All,
    AnyOf,
    Attribute,
    Expression,
    ExpressionTooCostly,
    InSegment,
    Not,
    check_cost,
)
from idr_pipeline.store.tables import ACTIVE, GOLDEN_PROFILES, IDENTITIES, SEGMENT_MEMBERS

#: Bound values one query may carry: below SQLite's 32766-parameter limit with room to spare.
MAX_PARAMETERS = 2000


class BehaviourNotSupported(ValueError):
    """A behavioural leaf: answerable only by the Spark segment job (the API answers 422)."""


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
    def __init__(self, placeholder: str, today: date) -> None:
        self.ph = placeholder
        self.today = today
        self.params: list[Any] = []

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
                f"WHERE UPPER({column}) IN ({self._marks(values)}))"
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
                f"WHERE {' AND '.join(conditions)})"
            )
        if isinstance(expr, InSegment):
            return (
                f"i.identity_id IN (SELECT identity_id FROM {SEGMENT_MEMBERS.name} "
                f"WHERE segment_id = {self._marks([expr.in_segment])})"
            )
        if isinstance(expr, BEHAVIOUR_LEAVES):
            raise BehaviourNotSupported(
                "behavioural conditions (purchased/clicked/viewed) need event aggregates the store "
                "does not hold; evaluate them as a segment and query in_segment"
            )
        raise TypeError(f"unknown expression node {type(expr).__name__}")  # pragma: no cover


def compile_audience(expr: Expression, placeholder: str = "?", today: date | None = None) -> CompiledAudience:
    """The predicate selecting active identities that satisfy ``expr``.

    Raises ExpressionTooCostly past the DSL's node/depth limits or MAX_PARAMETERS bound values,
    and BehaviourNotSupported for behavioural leaves.
    """
    check_cost(expr)
    compiler = _Compiler(placeholder, today or date.today())
    status = compiler._marks([ACTIVE])
    body = compiler.node(expr)
    if len(compiler.params) > MAX_PARAMETERS:
        raise ExpressionTooCostly(
            f"expression binds {len(compiler.params)} values; the limit is {MAX_PARAMETERS}"
        )
    return CompiledAudience(predicate=f"i.status = {status} AND {body}", params=compiler.params)
