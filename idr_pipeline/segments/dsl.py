"""The typed audience-expression language shared by segment YAML, Spark and the query API.

Expressions are JSON/YAML objects with exactly one key naming the operator, for example
``{"purchased": {"category": "luxury", "within_days": 30, "min_total": 500}}`` or
``{"all": [{...}, {"not": {...}}]}``. They are parsed into pydantic models, never into SQL
strings: the Spark evaluator and the store's query compiler each walk the same tree and bind
every value as a parameter, so a client can only ever express what the models allow.
"""

import math
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_WITHIN_DAYS = 366
#: Upper bounds of the numeric leaf arguments: far above any real audience, far below what
#: overflows a store's 64-bit integers or floats.
MAX_MIN_COUNT = 1_000_000
MAX_MIN_TOTAL = 1_000_000_000.0
#: Limits past which an expression is refused (the API answers 422): each behavioral leaf
#: costs a scan of the feature window, so width and depth are what make a query expensive.
MAX_NODES = 64
MAX_DEPTH = 8
MAX_IN_VALUES = 500
#: The largest fixed lookalike size: a Faiss query's k, far above any seed expansion.
MAX_LOOKALIKE_COUNT = 1_000_000

_Strict = ConfigDict(extra="forbid", frozen=True)

Name = Annotated[str, Field(min_length=1, max_length=128)]


class _Behavior(BaseModel):
    model_config = _Strict

    within_days: int = Field(default=30, ge=1, le=MAX_WITHIN_DAYS)
    category: Name | None = None
    min_count: int = Field(default=1, ge=1, le=MAX_MIN_COUNT)


class PurchasedArgs(_Behavior):
    product_id: Name | None = None
    #: Sum of purchase prices in the window (single currency: the generator's and most shops').
    min_total: float | None = Field(default=None, ge=0, le=MAX_MIN_TOTAL, allow_inf_nan=False)


class ClickedArgs(_Behavior):
    campaign: Name | None = None


class ViewedArgs(_Behavior):
    pass


class Purchased(BaseModel):
    model_config = _Strict
    purchased: PurchasedArgs


class Clicked(BaseModel):
    model_config = _Strict
    clicked: ClickedArgs


class Viewed(BaseModel):
    model_config = _Strict
    viewed: ViewedArgs


ProfileField = Literal["country", "state", "city", "postcode"]


class AttributeArgs(BaseModel):
    """A golden-profile attribute equal to one of ``in_``; matching is exact after upper-casing."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: ProfileField
    in_: list[Annotated[str, Field(max_length=128)]] = Field(
        alias="in", min_length=1, max_length=MAX_IN_VALUES
    )


class Attribute(BaseModel):
    model_config = _Strict
    attribute: AttributeArgs


class AgeArgs(BaseModel):
    """Age band in whole years on the evaluation date, from the golden profile's dob."""

    model_config = _Strict

    min: int | None = Field(default=None, ge=0, le=130)
    max: int | None = Field(default=None, ge=0, le=130)

    @model_validator(mode="after")
    def _band(self) -> "AgeArgs":
        if self.min is None and self.max is None:
            raise ValueError("age needs min and/or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("age min is above max")
        return self


class Age(BaseModel):
    model_config = _Strict
    age: AgeArgs


class InSegment(BaseModel):
    """Current membership of another segment (from the store)."""

    model_config = _Strict
    in_segment: Name


class All(BaseModel):
    model_config = _Strict
    all: list["Expression"] = Field(min_length=1)


class AnyOf(BaseModel):
    model_config = _Strict
    any: list["Expression"] = Field(min_length=1)


class Not(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    not_: "Expression" = Field(alias="not")


Expression = Union[Purchased, Clicked, Viewed, Attribute, Age, InSegment, All, AnyOf, Not]  # noqa: UP007
Leaf = Purchased | Clicked | Viewed | Attribute | Age | InSegment
BEHAVIOR_LEAVES = (Purchased, Clicked, Viewed)

for _model in (All, AnyOf, Not):
    _model.model_rebuild()


class ExpressionTooCostly(ValueError):
    """Raised for expressions past MAX_NODES / MAX_DEPTH; the API maps it to 422."""


def children(expr: Expression) -> list[Expression]:
    if isinstance(expr, All):
        return list(expr.all)
    if isinstance(expr, AnyOf):
        return list(expr.any)
    if isinstance(expr, Not):
        return [expr.not_]
    return []


def walk(expr: Expression) -> list[Expression]:
    """Every node, parents before children."""
    out = [expr]
    for child in children(expr):
        out.extend(walk(child))
    return out


def depth(expr: Expression) -> int:
    return 1 + max((depth(c) for c in children(expr)), default=0)


def check_cost(expr: Expression) -> None:
    nodes = len(walk(expr))
    if nodes > MAX_NODES:
        raise ExpressionTooCostly(f"expression has {nodes} nodes; the limit is {MAX_NODES}")
    d = depth(expr)
    if d > MAX_DEPTH:
        raise ExpressionTooCostly(f"expression is {d} levels deep; the limit is {MAX_DEPTH}")


def referenced_segments(expr: Expression) -> set[str]:
    return {n.in_segment for n in walk(expr) if isinstance(n, InSegment)}


def max_window_days(expr: Expression) -> int:
    """The longest look-back any behavioral leaf needs (0 when none)."""
    return max(
        (behavior_args(n).within_days for n in walk(expr) if isinstance(n, BEHAVIOR_LEAVES)), default=0
    )


def behavior_args(leaf: Purchased | Clicked | Viewed) -> PurchasedArgs | ClickedArgs | ViewedArgs:
    """The arguments of a behavioral leaf, with ``event_type`` telling which event it counts."""
    if isinstance(leaf, Purchased):
        return leaf.purchased
    if isinstance(leaf, Clicked):
        return leaf.clicked
    return leaf.viewed


#: The event type each behavioral leaf counts.
LEAF_EVENT_TYPE: dict[type, str] = {Purchased: "purchase", Clicked: "ad_click", Viewed: "page_view"}


class _ExpressionHolder(BaseModel):
    model_config = _Strict
    expr: Expression


def parse_expression(obj: object) -> Expression:
    """A validated expression from decoded JSON/YAML; pydantic.ValidationError when malformed."""
    parsed = _ExpressionHolder.model_validate({"expr": obj}).expr
    check_cost(parsed)
    return parsed


def to_json(expr: Expression) -> dict:
    return expr.model_dump(mode="json", by_alias=True, exclude_none=True)


# ------------------------------------------------------------------ segment catalog


class SizeBounds(BaseModel):
    """Expected share of active identities in the segment, checked after every evaluation."""

    model_config = _Strict

    min_share: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    max_share: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)


class RuleSegment(BaseModel):
    model_config = _Strict

    id: Annotated[str, Field(pattern=r"^[a-z0-9_\-]{1,64}$")]
    kind: Literal["rule"] = "rule"
    name: str
    description: str = ""
    rule: Expression
    expected_size: SizeBounds = SizeBounds()


class PrototypeSegment(BaseModel):
    """Membership by cosine similarity of an identity's behavior vector to the prototype's."""

    model_config = _Strict

    id: Annotated[str, Field(pattern=r"^[a-z0-9_\-]{1,64}$")]
    kind: Literal["prototype"] = "prototype"
    name: str
    description: str = ""
    #: Example behaviors rendered like an identity's behavior text ("purchased luxury ...").
    examples: list[str] = Field(default_factory=list)
    threshold: float = Field(ge=-1, le=1, allow_inf_nan=False)
    within_days: int = Field(default=90, ge=1, le=MAX_WITHIN_DAYS)
    expected_size: SizeBounds = SizeBounds()

    @model_validator(mode="after")
    def _has_text(self) -> "PrototypeSegment":
        if not (self.description.strip() or self.examples):
            raise ValueError(f"prototype segment {self.id} needs a description or examples")
        return self


class LookalikeSize(BaseModel):
    """How many identities a lookalike expansion takes: a share of the active identities
    (``share: 0.01`` is the ad platforms' "1% lookalike") or a fixed ``count``; exactly one."""

    model_config = _Strict

    share: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    count: int | None = Field(default=None, ge=1, le=MAX_LOOKALIKE_COUNT)

    @model_validator(mode="after")
    def _one_of(self) -> "LookalikeSize":
        if (self.share is None) == (self.count is None):
            raise ValueError("a lookalike size needs exactly one of share and count")
        return self

    def members(self, universe: int) -> int:
        """The most members out of ``universe`` active identities (a share rounds up, so 1% of
        a small population is never empty)."""
        if self.count is not None:
            return self.count
        return int(math.ceil(float(self.share or 0.0) * max(universe, 0)))


class LookalikeSegment(BaseModel):
    """The identities nearest a seed segment in behavior-vector space that are not in the seed.

    Similarity is the cosine between an identity's behavior vector and the seed's centroid
    (the normalized mean of its members' vectors); the ``size`` nearest with at least
    ``min_similarity`` are members, scored by that cosine.
    """

    model_config = _Strict

    id: Annotated[str, Field(pattern=r"^[a-z0-9_\-]{1,64}$")]
    kind: Literal["lookalike"] = "lookalike"
    name: str
    description: str = ""
    seed: Name
    size: LookalikeSize
    min_similarity: float = Field(default=0.0, ge=-1, le=1, allow_inf_nan=False)
    expected_size: SizeBounds = SizeBounds()

    @model_validator(mode="after")
    def _not_own_seed(self) -> "LookalikeSegment":
        if self.seed == self.id:
            raise ValueError(f"lookalike segment {self.id} cannot be its own seed")
        return self


AnySegment = RuleSegment | PrototypeSegment | LookalikeSegment
SegmentDefinition = Annotated[AnySegment, Field(discriminator="kind")]


def segment_dependencies(segment: AnySegment) -> set[str]:
    """The segments whose members this one needs first: ``in_segment`` references, a seed."""
    if isinstance(segment, RuleSegment):
        return referenced_segments(segment.rule)
    if isinstance(segment, LookalikeSegment):
        return {segment.seed}
    return set()


class SegmentCatalog(BaseModel):
    model_config = _Strict

    segments: list[SegmentDefinition]

    @model_validator(mode="after")
    def _unique_and_resolvable(self) -> "SegmentCatalog":
        ids = [s.id for s in self.segments]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate segment ids: {dupes}")
        for s in self.segments:
            if isinstance(s, RuleSegment):
                check_cost(s.rule)
            missing = segment_dependencies(s) - set(ids)
            if missing:
                raise ValueError(f"segment {s.id} refers to unknown segments {sorted(missing)}")
        return self

    def by_id(self) -> dict[str, AnySegment]:
        return {s.id: s for s in self.segments}


def load_segments(path: str | Path) -> SegmentCatalog:
    with open(path, encoding="utf-8") as handle:
        return SegmentCatalog.model_validate(yaml.safe_load(handle))
