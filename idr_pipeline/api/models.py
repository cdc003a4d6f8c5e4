"""Request and response bodies of the API.

Requests forbid unknown fields and bound every string and list: a typo in a field name is an
error the client sees (not a silently ignored filter), and no single field can make a request
expensive to parse or store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from idr_pipeline.segments.dsl import Expression, LookalikeSize

_Request = ConfigDict(extra="forbid")

Short = Annotated[str, Field(max_length=320)]
IdValue = Annotated[str, Field(min_length=1, max_length=320)]

#: Identifier types a client may name (erasure, resolve look-ups); ``email`` is normalized to
#: its match key and ``source_customer_key`` is ``<source>:<source_customer_id>``.
IdType = Literal[
    "email", "email_key", "phone", "national_id", "device_id", "anonymous_id", "source_customer_key"
]


class Page(BaseModel):
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


# ------------------------------------------------------------------ health


class Liveness(BaseModel):
    status: Literal["ok"]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    store: dict[str, Any]
    index: dict[str, Any]
    model: dict[str, Any]


# ------------------------------------------------------------------ identities


class IdentityOut(BaseModel):
    identity_id: str
    status: str
    merged_into: str | None = None
    record_count: int
    created_at: Any = None
    updated_at: Any = None
    profile: dict[str, Any] | None
    identifiers: list[dict[str, str]]
    records: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    merges: list[dict[str, Any]]
    masked_fields: list[str] = Field(
        default_factory=list, description="Profile fields shown masked (a key without the 'pii' scope)."
    )


# ------------------------------------------------------------------ resolve


class ResolveRequest(BaseModel):
    """Any subset of a profile's fields, raw: the API normalizes them as the pipeline does."""

    model_config = _Request

    first_name: Short | None = None
    last_name: Short | None = None
    email: Short | None = None
    phone: Short | None = None
    street: Short | None = None
    city: Short | None = None
    state: Short | None = None
    postcode: Short | None = None
    country: Short | None = None
    dob: Short | None = None
    national_id: Short | None = None
    device_id: Short | None = None
    anonymous_id: Short | None = None
    ip_address: Short | None = None
    source: Annotated[str, Field(max_length=64)] | None = None
    source_customer_id: Short | None = None


class Explanation(BaseModel):
    comparison: str
    level_label: str
    weight: float | None = None


class AmbiguousCandidate(BaseModel):
    identity_id: str
    probability: float
    weight: float = Field(description="The match weight in bits (log2 of the odds).")


class ResolveResponse(BaseModel):
    identity_id: str | None
    matched: bool
    method: Literal["deterministic", "probabilistic", "ambiguous", "none"]
    probability: float | None
    matched_on: str | None = None
    explanation: list[Explanation] = Field(description="Why it matched; empty when nothing matched.")
    candidates_scored: int | None = Field(default=None, description="Null when nothing matched.")
    registered_record_id: str | None = None
    ambiguous: bool = Field(
        default=False,
        description="Several identities fit and none clearly beats the others: no match is claimed.",
    )
    candidates: list[AmbiguousCandidate] = Field(
        default_factory=list, description="The identities that fit alike, when ambiguous."
    )


class PossibleMatch(BaseModel):
    record_id: str = Field(description="This identity's record.")
    other_record_id: str
    other_identity_id: str
    probability: float
    person_weight: float | None = Field(description="Bits of person-level evidence, when scored.")
    reason: str = Field(description="ambiguous, grey_band, or the guard that refused the merge.")


class PossibleMatches(BaseModel):
    identity_id: str
    possible_matches: list[PossibleMatch]


class DecisionRequest(BaseModel):
    """A steward's decision on two records, held through every re-run and streaming update."""

    model_config = _Request

    record_id_a: Annotated[str, Field(min_length=1, max_length=128)]
    record_id_b: Annotated[str, Field(min_length=1, max_length=128)]
    decision: Literal["link", "split"]
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class DecisionOut(BaseModel):
    record_id_l: str
    record_id_r: str
    decision: str
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    changed: bool | None = None


# ------------------------------------------------------------------ similar


class SimilarRequest(BaseModel):
    """Exactly one of ``identity_id``, ``email`` or ``text``, in the body: an e-mail or a profile in
    a query string would land in access logs."""

    model_config = _Request

    identity_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    email: Annotated[str, Field(min_length=3, max_length=320)] | None = None
    text: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=1000,
                description="a free-text profile: name, e-mail, birth date, address",
            ),
        ]
        | None
    ) = None
    k: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _exactly_one_query(self) -> SimilarRequest:
        given = [name for name in ("identity_id", "email", "text") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of identity_id, email or text")
        return self


class SimilarHit(BaseModel):
    identity_id: str
    score: float = Field(description="cosine of the identity's closest record to the query")
    record_id: str = Field(description="that closest record")


class SimilarResponse(BaseModel):
    query_identity_id: str | None
    neighbors: list[SimilarHit]


# ------------------------------------------------------------------ audiences


class AudienceQuery(BaseModel):
    model_config = _Request

    expression: Expression
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: Annotated[str, Field(max_length=512)] | None = None
    count_only: bool = Field(
        default=False,
        description="Only count: the identity ids of a page need the 'export' scope, a count does not.",
    )


class AudienceResult(Page):
    count: int
    identities: list[str]
    events_as_of: datetime | None = Field(
        default=None,
        description="The instant behavioral conditions count their days back from (UTC): the "
        "pipeline's last publish of event aggregates. Null without behavioral conditions.",
    )


# ------------------------------------------------------------------ segments


class SegmentOut(BaseModel):
    segment_id: str
    name: str
    kind: str
    description: str | None = None
    definition: Any = None
    threshold: float | None = None
    member_count: int
    updated_at: Any = None


class SegmentList(Page):
    segments: list[SegmentOut]


class Member(BaseModel):
    identity_id: str
    score: float
    assigned_at: Any = None


class MemberList(Page):
    segment_id: str
    members: list[Member]


# ------------------------------------------------------------------ identity changes


class IdentityChangeOut(BaseModel):
    event_id: str = Field(
        description="Digest of run id, identity id and kind: the same change always has this id."
    )
    seq: int = Field(description="Position in the feed: committed changes are numbered in commit order.")
    run_id: str = Field(
        description="The publish (lake versions it loaded) or erasure request that made the change."
    )
    kind: Literal["created", "split_from", "merged_into", "updated", "retired", "erased"]
    identity_id: str
    related_identity_ids: list[str] = Field(
        description="split_from: the identities its records left; merged_into: the survivor; "
        "updated: where records came from or went to."
    )
    record_ids: list[str] = Field(description="The records involved.")
    details: dict[str, Any] = Field(
        description="updated: joined_record_ids, left_record_ids, golden_record_changed."
    )
    recorded_at: datetime
    published_at: datetime | None = Field(description="When the broker acknowledged it; null until then.")


class ChangeList(BaseModel):
    changes: list[IdentityChangeOut]
    next_cursor: str = Field(
        description="Pass as `since` to continue after the last change returned (the same cursor when "
        "nothing new was there): a feed has no last page."
    )
    has_more: bool = Field(description="More changes are already there past this page.")


class LookalikeRequest(BaseModel):
    """A lookalike expansion of the segment: ``size`` as a share of the active identities or a
    count (at most ``MAX_API_LOOKALIKE``), and the least cosine to the seed's centroid."""

    model_config = _Request

    size: LookalikeSize
    min_similarity: float = Field(default=0.0, ge=-1, le=1, allow_inf_nan=False)


class LookalikeMember(BaseModel):
    identity_id: str
    score: float = Field(description="Cosine between the identity's behavior vector and the seed's centroid.")


class LookalikeResult(BaseModel):
    segment_id: str
    seed_members: int = Field(description="Current members of the seed segment.")
    seed_with_behavior: int = Field(description="Seed members with a behavior vector in the index.")
    size: int = Field(description="The most members asked for (a share resolved against active identities).")
    min_similarity: float
    behavior_as_of: str | None = Field(
        default=None, description="The daily partition of the behavior index answered from."
    )
    members: list[LookalikeMember]


# ------------------------------------------------------------------ activations


class ActivationRequest(BaseModel):
    """Where to send a segment.

    * ``file``: a customer-match CSV written under the server's export folder; ``target`` is the
      file name (letters, digits, ``._-``), ``format`` picks Google's or Meta's header and phone
      spelling.
    * ``kafka``: one JSON message per member on topic ``target``.
    * ``webhook``: JSON batches POSTed to the http(s) URL ``target``.
    """

    model_config = _Request

    destination: Literal["file", "kafka", "webhook"]
    target: Annotated[str, Field(min_length=1, max_length=2048)]
    format: Literal["google", "meta"] = "google"


class ActivationCreated(BaseModel):
    activation_id: str
    status: str


class ActivationOut(BaseModel):
    activation_id: str
    segment_id: str
    destination: str
    target: str | None
    status: str
    counts: dict[str, Any] | None
    error: str | None
    created_at: Any = None
    updated_at: Any = None


# ------------------------------------------------------------------ erasure


class ErasureRequest(BaseModel):
    model_config = _Request

    id_type: IdType
    value: IdValue
    dry_run: bool = Field(default=False, description="List what would go; change nothing.")
    include_merged: bool = Field(
        default=False,
        description="Also erase the identities merged into this one. Without it an identity that "
        "absorbed others is refused (409): a wrong merge would erase a second person.",
    )


class HeldIdentifier(BaseModel):
    id_type: str
    id_value: str


class ErasureResult(BaseModel):
    request_id: str
    dry_run: bool
    outcome: Literal["erased", "would_erase", "not_found"]
    identities: list[str] = Field(description="Identities erased (or that would be).")
    merged_identities: list[str] = Field(description="Identities merged into the subject's.")
    records: int
    record_ids: list[str] | None = Field(default=None, description="Dry run only.")
    identifiers: list[HeldIdentifier] | None = Field(
        default=None, description="Dry run only: identifiers that would be deleted and tombstoned."
    )
    shared_identifiers_kept: int = Field(
        description="Identifiers other identities also hold: not tombstoned."
    )
    rows_deleted: dict[str, int]
    index_vectors_removed: int
    behavior_vectors_removed: int = Field(
        default=0, description="Behavior vectors taken out of the lookalike indexes (every day's)."
    )
    tombstones_written: int
    purge_requested: bool = Field(description="Whether a lake purge was queued (see the purge job).")
    changes_recorded: int = Field(default=0, description="`erased` changes recorded for the change feed.")
    changes_published: bool = Field(
        default=False,
        description="Whether the broker took them now; else the next change feed run sends them.",
    )
