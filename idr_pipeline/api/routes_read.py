"""Health, identity look-up, resolve and nearest neighbors."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from idr_pipeline.api.auth import require
from idr_pipeline.api.keys import ApiKey
from idr_pipeline.api.models import (
    Health,
    IdentityOut,
    Liveness,
    PossibleMatches,
    ResolveRequest,
    ResolveResponse,
    SimilarHit,
    SimilarRequest,
    SimilarResponse,
)
from idr_pipeline.api.privacy import MASKED_FIELDS, log_identity_read, mask_identity
from idr_pipeline.api.similar import golden_profile, nearest_identities
from idr_pipeline.api.state import AppState, get_state
from idr_pipeline.standardize import email_match_key, normalize_email

router = APIRouter()

IdentityId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/health", response_model=Liveness, tags=["health"])
async def health() -> dict[str, Any]:
    """Liveness for load balancers, without a key: the process answers. Nothing else is said
    here; ``/health/details`` (a key with ``read``) reports the store, index and model."""
    return {"status": "ok"}


@router.get("/health/details", response_model=Health, tags=["health"])
def health_details(request: Request, _: ApiKey = Depends(require("read"))) -> dict[str, Any]:
    """Whether the store answers, and what is loaded. Errors are named by kind only."""
    state = get_state(request)
    store_info: dict[str, Any] = {}
    try:
        store = state.store()
        store.query("SELECT 1")
        store_info = {"ok": True, "backend": store.backend_name}
    except Exception as exc:
        store_info = {"ok": False, "error": type(exc).__name__}
    index = state.index
    index_info = {
        "loaded": index is not None,
        "vectors": len(index) if index is not None else 0,
        "kind": index.kind if index is not None else None,
        "supports_removal": True,
        "error": _kind(state.index_error),
    }
    resolver = state.resolver
    model_info = {
        "loaded": state.model is not None,
        "version": state.model.version if state.model is not None else None,
        "resolve_mode": "deterministic+probabilistic" if state.model is not None else "deterministic only",
        "blocking_index_identities": len(resolver.blocking) if resolver and resolver.blocking else 0,
        "error": _kind(state.model_error),
    }
    ok = store_info.get("ok") and state.model is not None
    return {
        "status": "ok" if ok else "degraded",
        "store": store_info,
        "index": index_info,
        "model": model_info,
    }


def _kind(error: str | None) -> str | None:
    """``FileNotFoundError: /srv/lake/...`` -> ``FileNotFoundError``: no paths or addresses."""
    return error.split(":", 1)[0] if error else None


@router.get("/identities/{identity_id}", response_model=IdentityOut, tags=["identities"])
async def get_identity(
    identity_id: IdentityId, request: Request, key: ApiKey = Depends(require("read"))
) -> dict[str, Any]:
    """Golden profile, identifiers, source records, current segments and merge history.

    National id and date of birth are masked (last four digits; the year) unless the key has
    the ``pii`` scope. Every read is logged with the key id and the fields, never the values.

    ``async`` with one worker-thread hop for the store read (one round trip, see
    ``get_identity``), on that thread's own connection. The event loop never waits on the
    store: a read takes little CPU but waits for the store server for most of its time, and
    longer while the server is busy (a publish writing to it, another process on its cores).
    On the loop, that wait stalled every other request; on the read threads
    (``IDR_API_READ_THREADS``, apart from the pool /resolve uses, so reads never queue behind
    resolves) that many reads wait at once while the loop keeps accepting, validating and
    answering. The answer is validated on the loop (a plain ``def`` route would hop to the
    pool a second time for that).
    """
    state = get_state(request)
    identity = await state.read(_read_identity, state, identity_id)
    if identity is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such identity")
    whole = key.allows("pii")
    log_identity_read(key.key_id, identity_id, identity.get("profile"), masked=not whole)
    if whole:
        return identity
    return {**mask_identity(identity), "masked_fields": list(MASKED_FIELDS)}


def _read_identity(state: AppState, identity_id: str) -> dict[str, Any] | None:
    """The worker-thread part of the identity look-up: the thread's store connection, one read."""
    return state.store().get_identity(identity_id)


@router.get("/identities/{identity_id}/possible-matches", response_model=PossibleMatches, tags=["identities"])
def get_possible_matches(
    identity_id: IdentityId, request: Request, _: ApiKey = Depends(require("read"))
) -> dict[str, Any]:
    """Pairs a steward may want to review, each seen from this identity: a record of it that
    fits several people (``ambiguous``), a merge a guard refused (its reason), or a score in the
    grey band below the match threshold. Ids only: the other identity's profile needs its own
    read."""
    store = get_state(request).store()
    if store.get_identity(identity_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such identity")
    return {"identity_id": identity_id, "possible_matches": store.possible_matches_of(identity_id)}


@router.post("/resolve", response_model=ResolveResponse, tags=["identities"])
async def resolve(
    body: ResolveRequest,
    request: Request,
    key: ApiKey = Depends(require("read", "resolve")),
    register: Annotated[
        bool, Query(description="Publish an unmatched input to idr.profiles (source 'api').")
    ] = False,
) -> dict[str, Any]:
    """Deterministic look-up on strong identifiers, else the trained model over blocked candidates.

    ``async`` with one worker-thread hop for the resolver (CPU for milliseconds, and store
    reads): a plain ``def`` route would make two, the route and then the validation of its
    answer, and each hop back to the event loop and out again can wait for the GIL behind
    another /resolve computing meanwhile (up to the interpreter's switch interval per
    hand-over). The answer is validated on the loop, which is cheap.
    """
    state = get_state(request)
    fields = body.model_dump(exclude_none=True)
    if not fields:
        raise HTTPException(422, "send at least one field")
    if register and not key.allows("activate"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "register=true needs the 'activate' scope")
    assert state.resolver is not None
    state.resolver.refresh_if_stale(state.pool.open_unpooled, state.settings.api_candidate_refresh_seconds)
    return await anyio.to_thread.run_sync(_resolve, state, fields, register)


def _resolve(state: AppState, fields: dict[str, Any], register: bool) -> dict[str, Any]:
    """The worker-thread part of /resolve: the thread's store connection, resolve, publish."""
    assert state.resolver is not None
    result = state.resolver.resolve(state.store(), fields)
    registered = None
    if register and not result.matched and not result.ambiguous:
        try:
            registered = state.publisher.publish(fields)
        except Exception as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"could not publish: {type(exc).__name__}"
            ) from exc
    if result.ambiguous:
        # Several identities fit alike: name them, claim none, register nothing (the input is
        # someone's, only not clearly whose).
        return {
            "identity_id": None,
            "matched": False,
            "method": "ambiguous",
            "probability": None,
            "matched_on": None,
            "explanation": [],
            "candidates_scored": result.candidates_scored,
            "registered_record_id": None,
            "ambiguous": True,
            "candidates": result.ambiguous_candidates,
        }
    if not result.matched:
        # Nothing matched: no score, explanation or candidate count, which would describe the
        # closest other person (how many share the query's name, where they agree).
        return {
            "identity_id": None,
            "matched": False,
            "method": "none",
            "probability": None,
            "matched_on": None,
            "explanation": [],
            "candidates_scored": None,
            "registered_record_id": registered,
        }
    return {
        "identity_id": result.identity_id,
        "matched": result.matched,
        "method": result.method,
        "probability": result.probability,
        "matched_on": result.matched_on,
        "explanation": result.explanation,
        "candidates_scored": result.candidates_scored,
        "registered_record_id": registered,
    }


@router.get("/similar", response_model=SimilarResponse, tags=["identities"])
def similar_to_identity(
    request: Request,
    identity_id: Annotated[str, Query(min_length=1, max_length=128)],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    _: ApiKey = Depends(require("read")),
) -> dict[str, Any]:
    """The ``k`` identities nearest to ``identity_id`` in the profile-embedding index, with
    cosine scores, best first; the identity itself and erased identities are never returned.

    Only an identity id goes in the query string: ask by e-mail or free-text profile with
    ``POST /similar``, whose body stays out of access logs.
    """
    return _similar(get_state(request), SimilarRequest(identity_id=identity_id, k=k))


@router.post("/similar", response_model=SimilarResponse, tags=["identities"])
def similar(body: SimilarRequest, request: Request, _: ApiKey = Depends(require("read"))) -> dict[str, Any]:
    """The ``k`` identities nearest to an identity, an e-mail or a free-text profile, with cosine
    scores, best first.

    An e-mail is looked up first: the golden profile of the identity holding it is the query
    (that identity is left out of the answer), else the address alone. Erased identities are
    never returned.
    """
    return _similar(get_state(request), body)


def _similar(state: AppState, body: SimilarRequest) -> dict[str, Any]:
    store = state.store()
    owner: str | None = None
    profile: dict[str, Any] | None = None
    if body.identity_id is not None:
        owner = body.identity_id
        profile = golden_profile(store, owner)
        if profile is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "identity not found")
    elif body.email is not None:
        normalized = normalize_email(body.email).value
        if normalized is None:
            raise HTTPException(422, "not a usable e-mail address")
        owners = store.lookup("email_key", email_match_key(normalized) or normalized)
        owner = owners[0] if len(owners) == 1 else None
        profile = (golden_profile(store, owner) if owner else None) or {"email": normalized}
    index, encoder = state.index, state.encoder
    if index is None or len(index) == 0 or encoder is None:
        return {"query_identity_id": owner, "neighbors": []}
    vector = encoder.encode([body.text]) if profile is None else state.embedder([profile])

    def search(query: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        with state.index_lock:
            return index.search(query, fetch)

    hits = nearest_identities(index, store, vector, body.k, exclude_identity=owner, search=search)
    return {
        "query_identity_id": owner,
        "neighbors": [
            SimilarHit(identity_id=h.identity_id, score=h.score, record_id=h.record_id) for h in hits
        ],
    }
