"""Audience queries and segment listings, all keyset-paginated.

Listing identities is what the ``export`` scope is for. A request *lists* when it answers with
identity ids the server chose rather than ones the caller named: an audience query's page of
ids (``count_only`` false) and a segment's member page. Counting an audience, the segment
catalog and look-ups of a named identity are ``read``. (Whatever a ``read`` key could do with
narrow audiences, it only ever learns how many people match.)
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from idr_pipeline.api.audience_sql import as_datetime, behavior_leaves, compile_audience, events_as_of_sql
from idr_pipeline.api.auth import require
from idr_pipeline.api.keys import ApiKey
from idr_pipeline.api.lookalike import MAX_API_LOOKALIKE, BehaviorIndexCache, lookalike_members
from idr_pipeline.api.models import (
    AudienceQuery,
    AudienceResult,
    LookalikeRequest,
    LookalikeResult,
    MemberList,
    SegmentList,
)
from idr_pipeline.api.pagination import decode_cursor, next_cursor
from idr_pipeline.api.state import get_state
from idr_pipeline.segments.dsl import ExpressionTooCostly
from idr_pipeline.store.base import QueryTimeout

router = APIRouter()

SegmentId = Annotated[str, Path(min_length=1, max_length=128)]
Cursor = Annotated[str | None, Query(max_length=512)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post("/audiences/query", response_model=AudienceResult, tags=["audiences"])
def query_audience(
    body: AudienceQuery, request: Request, key: ApiKey = Depends(require("read"))
) -> dict[str, Any]:
    """Count the active identities matching a typed expression (never SQL), and list a page of
    them (the ``export`` scope; ``count_only`` needs ``read`` alone).

    Behavioral leaves answer as of ``events_as_of``, the instant the pipeline last published
    the event aggregates (null when the expression has none, or nothing was published yet).
    Count and page share one time budget (``IDR_API_QUERY_TIMEOUT_SECONDS``); past it the
    store interrupts the statement and the answer is 422.
    """
    if not body.count_only and not key.allows("export"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "listing identities needs the 'export' scope; send count_only=true for the count alone",
        )
    state = get_state(request)
    store = state.store()
    after = decode_cursor(body.cursor)
    try:
        compiled = compile_audience(body.expression, store.placeholder)
    except ExpressionTooCostly as exc:
        raise HTTPException(422, str(exc)) from exc
    as_of = as_datetime(store.query(events_as_of_sql())[0][0]) if behavior_leaves(body.expression) else None
    deadline = time.monotonic() + state.settings.api_query_timeout_seconds

    def run(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise QueryTimeout("no time left")
        return store.query_with_timeout(sql, params, left)

    try:
        count_sql, count_params = compiled.count_sql()
        count = int(run(count_sql, count_params)[0][0])
        ids: list[str] = []
        if not body.count_only:
            page_sql, page_params = compiled.page_sql(store.placeholder, body.limit, after)
            ids = [row[0] for row in run(page_sql, page_params)]
    except QueryTimeout as exc:
        raise HTTPException(
            422,
            f"the audience query ran past {state.settings.api_query_timeout_seconds:g} s; narrow the expression",
        ) from exc
    return {
        "count": count,
        "identities": ids,
        "next_cursor": next_cursor(ids, body.limit) if not body.count_only else None,
        "events_as_of": as_of,
    }


@router.get("/segments", response_model=SegmentList, tags=["segments"])
def list_segments(
    request: Request, cursor: Cursor = None, limit: Limit = 100, _: ApiKey = Depends(require("read"))
) -> dict[str, Any]:
    store = get_state(request).store()
    after = decode_cursor(cursor)
    rows = store.select_rows(
        "segments", order_by=["segment_id"], limit=limit, after={"segment_id": after} if after else None
    )
    return {"segments": rows, "next_cursor": next_cursor([r["segment_id"] for r in rows], limit)}


@router.get("/segments/{segment_id}/members", response_model=MemberList, tags=["segments"])
def segment_members(
    segment_id: SegmentId,
    request: Request,
    cursor: Cursor = None,
    limit: Limit = 100,
    _: ApiKey = Depends(require("export")),
) -> dict[str, Any]:
    """A page of the segment's members: a listing, so the ``export`` scope."""
    store = get_state(request).store()
    if not store.select_rows("segments", {"segment_id": segment_id}):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such segment")
    after = decode_cursor(cursor)
    rows = store.select_rows(
        "segment_members",
        {"segment_id": segment_id},
        order_by=["identity_id"],
        limit=limit,
        after={"identity_id": after} if after else None,
    )
    members = [{k: r[k] for k in ("identity_id", "score", "assigned_at")} for r in rows]
    return {
        "segment_id": segment_id,
        "members": members,
        "next_cursor": next_cursor([r["identity_id"] for r in rows], limit),
    }


@router.post("/segments/{segment_id}/lookalike", response_model=LookalikeResult, tags=["segments"])
def segment_lookalike(
    segment_id: SegmentId,
    body: LookalikeRequest,
    request: Request,
    _: ApiKey = Depends(require("export")),
) -> dict[str, Any]:
    """The identities nearest the segment's members in behavior-vector space, outside it: at
    most ``size`` of them, each with a cosine to the seed's centroid of at least
    ``min_similarity``, best first. Erased and inactive identities are never returned.

    A listing of identities, so the ``export`` scope. Empty when the pipeline has not built a
    behavior index yet (``behavior_as_of`` null) or no seed member has behavior in it.
    """
    state = get_state(request)
    store = state.store()
    if not store.select_rows("segments", {"segment_id": segment_id}):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such segment")
    universe = store.count_rows("identities", {"status": "active"})
    size = body.size.members(universe)
    if size > MAX_API_LOOKALIKE:
        raise HTTPException(
            422,
            f"a lookalike of {size:,} identities is past the API's {MAX_API_LOOKALIKE:,}; define it as "
            "a lookalike segment in the segment catalog and page its members",
        )
    cache = state.behavior or BehaviorIndexCache(state.settings.index_dir)
    expansion = lookalike_members(store, cache, segment_id, size, body.min_similarity)
    return {
        "segment_id": segment_id,
        "seed_members": expansion.seed_members,
        "seed_with_behavior": expansion.seed_with_behavior,
        "size": size,
        "min_similarity": body.min_similarity,
        "behavior_as_of": expansion.behavior_as_of,
        "members": expansion.members.to_dict("records"),
    }
