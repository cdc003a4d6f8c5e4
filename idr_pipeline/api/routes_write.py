"""Activations (scope ``activate``) and erasure (scope ``admin``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Request, status

from idr_pipeline.api.activation import new_activation, run_activation, validate_target
from idr_pipeline.api.auth import require
from idr_pipeline.api.erasure import SharedIdentifier, erase_subject
from idr_pipeline.api.keys import ApiKey
from idr_pipeline.api.models import (
    ActivationCreated,
    ActivationOut,
    ActivationRequest,
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
    background: BackgroundTasks,
    _: ApiKey = Depends(require("activate")),
) -> dict[str, Any]:
    """Start exporting a segment; poll ``GET /activations/{id}`` for status and counts."""
    state = get_state(request)
    store = state.store()
    if not store.select_rows("segments", {"segment_id": segment_id}):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such segment")
    try:
        validate_target(body)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    row = new_activation(store, segment_id, body)
    # Runs on the worker pool after the response; it opens that thread's own connection.
    background.add_task(lambda: run_activation(state.store(), state.settings, row, body.format))
    return {"activation_id": row["activation_id"], "status": row["status"]}


@router.get("/activations/{activation_id}", response_model=ActivationOut, tags=["activations"])
def get_activation(
    activation_id: Id, request: Request, _: ApiKey = Depends(require("activate"))
) -> dict[str, Any]:
    rows = get_state(request).store().select_rows("activations", {"activation_id": activation_id})
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such activation")
    return rows[0]


@router.delete("/subjects", response_model=ErasureResult, tags=["erasure"])
def erase(body: ErasureRequest, request: Request, _: ApiKey = Depends(require("admin"))) -> dict[str, Any]:
    """Erase the identity holding this identifier from the store and the index, and tombstone it.

    The body names the identifier (never the URL, which ends up in access logs). A subject not
    found is still tombstoned, so records arriving later do not create them.
    """
    try:
        result = erase_subject(get_state(request), body.id_type, body.value)
    except SharedIdentifier as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return result.as_dict()
