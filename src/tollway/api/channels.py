"""/api/channels (admin): the upstreams calls are forwarded to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from tollway.api.deps import PathId, admin_account, gateway, json_body
from tollway.manage import channels as service
from tollway.manage.channel_test import test_channel

router = APIRouter(dependencies=[Depends(admin_account)])


@router.post("/channels", status_code=201)
async def create(request: Request) -> dict[str, Any]:
    return await service.create_channel(gateway(request), await json_body(request))


@router.get("/channels")
async def list_all(request: Request) -> dict[str, Any]:
    return {"data": await service.list_channels(gateway(request))}


@router.get("/channels/{channel_id}")
async def read(request: Request, channel_id: PathId) -> dict[str, Any]:
    return await service.get_channel(gateway(request), channel_id)


@router.patch("/channels/{channel_id}")
async def edit(request: Request, channel_id: PathId) -> dict[str, Any]:
    return await service.update_channel(gateway(request), channel_id, await json_body(request))


@router.delete("/channels/{channel_id}", status_code=204)
async def remove(request: Request, channel_id: PathId) -> Response:
    await service.delete_channel(gateway(request), channel_id)
    return Response(status_code=204)


@router.post("/channels/{channel_id}/test")
async def test(request: Request, channel_id: PathId) -> dict[str, Any]:
    """One small call to the channel's upstream; a pass enables it again."""
    body = await json_body(request)
    return await test_channel(gateway(request), channel_id, body)
