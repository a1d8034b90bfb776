"""/api/usage: the caller's usage records (an admin's: anyone's)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from tollway.api.deps import (
    Caller,
    QueryId,
    QueryText,
    admin_account,
    gateway,
    optional_time,
    target_account,
)
from tollway.errors import bad_request
from tollway.manage.checks import can_exist
from tollway.manage.usage import MARGIN_KEYS, MAX_PAGE, list_usage, margins

router = APIRouter()
CURSOR = re.compile(r"[0-9]{1,10}")


@router.get("/usage")
async def usage(
    request: Request,
    caller: Caller,
    token_id: QueryId = None,
    model: QueryText = None,
    since: QueryText = None,
    until: QueryText = None,
    account_id: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: QueryText = None,
) -> dict[str, Any]:
    if cursor is not None and not (CURSOR.fullmatch(cursor) and can_exist(int(cursor))):
        raise bad_request("'cursor' must be a next_cursor from an earlier page.", param="cursor")
    everyone = caller.is_admin and account_id is None and token_id is not None
    return await list_usage(
        gateway(request),
        None if everyone else target_account(caller, account_id),
        token_id=token_id,
        model=model,
        since=optional_time(since, "since"),
        until=optional_time(until, "until"),
        limit=limit,
        cursor=int(cursor) if cursor else None,
    )


@router.get("/usage/margins", dependencies=[Depends(admin_account)])
async def usage_margins(
    request: Request,
    by: QueryText = "model",
    since: QueryText = None,
    until: QueryText = None,
) -> dict[str, Any]:
    """Revenue, what the upstreams charged, and the margin, by model or channel (admin)."""
    if by not in MARGIN_KEYS:
        raise bad_request(f"'by' must be one of: {', '.join(MARGIN_KEYS)}.", param="by")
    rows = await margins(
        gateway(request), by, optional_time(since, "since"), optional_time(until, "until")
    )
    return {"data": rows}
