"""/api/groups (admin): price groups and their multipliers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from tollway.api.deps import admin_account, gateway, json_body
from tollway.manage import groups as service

router = APIRouter(dependencies=[Depends(admin_account)])
# A group's name in a path (a longer one cannot exist: 404 by the service).
GroupName = Annotated[str, Path(max_length=200)]


@router.post("/groups", status_code=201)
async def create(request: Request) -> dict[str, Any]:
    return await service.create_group(gateway(request), await json_body(request))


@router.get("/groups")
async def list_all(request: Request) -> dict[str, Any]:
    return {"data": await service.list_groups(gateway(request))}


@router.get("/groups/{name}")
async def read(request: Request, name: GroupName) -> dict[str, Any]:
    return await service.get_group(gateway(request), name)


@router.patch("/groups/{name}")
async def edit(request: Request, name: GroupName) -> dict[str, Any]:
    return await service.update_group(gateway(request), name, await json_body(request))
