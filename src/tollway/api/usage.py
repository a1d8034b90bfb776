"""/api/usage: the caller's usage records (an admin's: anyone's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tollway.api.deps import Caller, gateway, optional_time, target_account
from tollway.errors import bad_request
from tollway.manage.usage import list_usage

router = APIRouter()


@router.get("/usage")
async def usage(
    request: Request,
    caller: Caller,
    token_id: int | None = None,
    model: str | None = None,
    since: str | None = None,
    until: str | None = None,
    account_id: int | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    if cursor is not None and not cursor.isdigit():
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
