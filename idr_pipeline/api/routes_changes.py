"""The identity change feed, as a pull: ``GET /changes?since=<cursor>``.

The same changes the Kafka topic carries (``identity_changes``), for consumers that poll or
that need to replay from a point. Keyset-paginated on the changes' commit order, so a change
committed after a page was read is on a later page, never before the cursor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from idr_pipeline.api.auth import require
from idr_pipeline.api.keys import ApiKey
from idr_pipeline.api.models import ChangeList
from idr_pipeline.api.pagination import decode_cursor, encode_cursor
from idr_pipeline.api.state import get_state
from idr_pipeline.store.change_log import changes_after

router = APIRouter()

Cursor = Annotated[str | None, Query(max_length=512, description="A `next_cursor` from an earlier answer.")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _position(cursor: str | None) -> int:
    after = decode_cursor(cursor)
    if after is None:
        return 0
    if not after.isdigit():
        raise HTTPException(422, "invalid cursor")
    return int(after)


@router.get("/changes", response_model=ChangeList, tags=["identities"])
def list_changes(
    request: Request, since: Cursor = None, limit: Limit = 100, _: ApiKey = Depends(require("export"))
) -> dict[str, Any]:
    """Identity changes committed after ``since`` (from the first without it), oldest first.

    Each names one identity and what happened to it (created, split_from, merged_into, updated,
    retired, erased), the run and the record ids involved. ``next_cursor`` is always given:
    poll with it to get what was committed since.
    """
    position = _position(since)
    rows = changes_after(get_state(request).store(), position, limit + 1)
    page = rows[:limit]
    last = page[-1]["seq"] if page else position
    return {"changes": page, "next_cursor": encode_cursor(str(last)), "has_more": len(rows) > limit}
