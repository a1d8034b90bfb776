"""/api/audit (admin): the audit log, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from tollway.api.deps import admin_account, gateway
from tollway.manage import audit as service

router = APIRouter(dependencies=[Depends(admin_account)])


@router.get("/audit")
async def list_audit(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LISTED)] = 100,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Filter by an action's prefix (``account.``) or a target (``account:5``)."""
    entries = await service.list_audit(gateway(request), limit, action, target)
    return {"data": entries}
