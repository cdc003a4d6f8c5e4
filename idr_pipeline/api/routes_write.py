"""Activations (scope ``activate``), stewards' match decisions (scope ``steward``) and erasure
(scope ``admin``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from idr_pipeline.api.activation import ActivationsBusy, TargetRefused, new_activation, validate_target
from idr_pipeline.api.auth import require
from idr_pipeline.api.erasure import MergedIdentities, SharedIdentifier, erase_subject
from idr_pipeline.api.keys import ApiKey
from idr_pipeline.api.models import (
    ActivationCreated,
    ActivationOut,
    ActivationRequest,
    DecisionOut,
    DecisionRequest,
    ErasureRequest,
    ErasureResult,
)
from idr_pipeline.api.state import get_state

router = APIRouter()

Id = Annotated[str, Path(min_length=1, max_length=128)]


@router.post(
    "/segments/{segment_id}/activations",
    response_model=ActivationCreated,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["activations"],
)
def activate_segment(
    segment_id: Id,
    body: ActivationRequest,
    request: Request,
    key: ApiKey = Depends(require("activate", "activations")),
) -> dict[str, Any]:
    """Start exporting a segment; poll ``GET /activations/{id}`` (with the same key).

    The export runs on the activation pool, never on the routes' threads; 429 when that pool
    and its queue are full.
    """
    state = get_state(request)
    store = state.store()
    if not store.select_rows("segments", {"segment_id": segment_id}):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such segment")
    try:
        validate_target(body, state.settings)
    except TargetRefused as exc:
        raise HTTPException(422, str(exc)) from exc
    assert state.activations is not None
    row = new_activation(store, segment_id, body, key.key_id)
    try:
        state.activations.submit(row, body.format)
    except ActivationsBusy as exc:
        store.update_rows(
            "activations", {"status": "failed", "error": "refused: activation queue full"},
            {"activation_id": row["activation_id"]},
        )  # fmt: skip
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": "10"}
        ) from exc
    return {"activation_id": row["activation_id"], "status": row["status"]}


@router.get("/activations/{activation_id}", response_model=ActivationOut, tags=["activations"])
def get_activation(
    activation_id: Id, request: Request, key: ApiKey = Depends(require("activate"))
) -> dict[str, Any]:
    """An activation's status and counts: only for the key that started it (or an admin key);
    any other key gets 404, as for an activation that does not exist."""
    rows = get_state(request).store().select_rows("activations", {"activation_id": activation_id})
    if not rows or (rows[0].get("owner_key_id") != key.key_id and "admin" not in key.scopes):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such activation")
    return rows[0]


def _erase(body: ErasureRequest, request: Request, key: ApiKey) -> dict[str, Any]:
    try:
        result = erase_subject(
            get_state(request),
            body.id_type,
            body.value,
            key_id=key.key_id,
            dry_run=body.dry_run,
            include_merged=body.include_merged,
        )
    except (SharedIdentifier, MergedIdentities) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return result.as_dict()


@router.post("/subjects/erase", response_model=ErasureResult, tags=["erasure"])
def erase_post(
    body: ErasureRequest, request: Request, key: ApiKey = Depends(require("admin", "erasure"))
) -> dict[str, Any]:
    """Erase the identity holding this identifier from the store, the index and (through the
    purge job) the lake, and tombstone what it held; ``dry_run`` lists what would go.

    The identifier travels in the body, never the URL (which ends up in access logs). A value
    no identity holds is answered ``not_found`` and tombstones nothing. Identities merged into
    the subject's are listed, and erased only with ``include_merged`` (else 409). Every request
    is recorded in the append-only erasure audit.
    """
    return _erase(body, request, key)


@router.delete("/subjects", response_model=ErasureResult, tags=["erasure"])
def erase(
    body: ErasureRequest, request: Request, key: ApiKey = Depends(require("admin", "erasure"))
) -> dict[str, Any]:
    """The same as ``POST /subjects/erase``, kept for clients of the first version; some
    proxies drop a DELETE's body, so prefer the POST."""
    return _erase(body, request, key)


@router.post("/decisions", response_model=DecisionOut, tags=["decisions"])
def decide(
    body: DecisionRequest, request: Request, key: ApiKey = Depends(require("steward"))
) -> dict[str, Any]:
    """Force two records together (``link``) or apart (``split``). The pipeline applies it from
    its next run on, before the clustering's guards, through every re-run and streaming update;
    ``idr why`` shows when a link came from a decision. Deciding the pair again replaces it."""
    if body.record_id_a == body.record_id_b:
        raise HTTPException(422, "a decision needs two different records")
    store = get_state(request).store()
    changed = store.record_decision(
        body.record_id_a, body.record_id_b, body.decision, body.reason, f"key:{key.key_id}"
    )
    low, high = sorted((body.record_id_a, body.record_id_b))
    row = next(d for d in store.select_rows("match_decisions", {"record_id_l": low, "record_id_r": high}))
    return {**row, "changed": changed}


@router.get("/decisions", response_model=list[DecisionOut], tags=["decisions"])
def list_decisions(
    request: Request,
    record_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    _: ApiKey = Depends(require("steward")),
) -> list[dict[str, Any]]:
    """Every decision, or those naming ``record_id``."""
    store = get_state(request).store()
    if record_id is None:
        return store.match_decisions()
    rows = store.select_rows("match_decisions", {"record_id_l": record_id}) + store.select_rows(
        "match_decisions", {"record_id_r": record_id}
    )
    return sorted(rows, key=lambda d: (d["record_id_l"], d["record_id_r"]))


@router.post("/decisions/remove", response_model=DecisionOut, tags=["decisions"])
def remove_decision(
    body: DecisionRequest, request: Request, _: ApiKey = Depends(require("steward"))
) -> dict[str, Any]:
    """Withdraw the decision on the two records (its ``decision`` must match the stored one):
    the next run decides them by the model again."""
    store = get_state(request).store()
    low, high = sorted((body.record_id_a, body.record_id_b))
    rows = store.select_rows("match_decisions", {"record_id_l": low, "record_id_r": high})
    if not rows or rows[0]["decision"] != body.decision:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such decision")
    store.remove_decision(low, high)
    return {**rows[0], "changed": True}
