"""The probes: /healthz (the process answers) and /readyz (it can serve:
the database answers and the model catalog is loaded). Neither needs a key.
/metrics is served here too: Prometheus scrapes without one."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tollway.gateway import Gateway

log = logging.getLogger(__name__)

DATABASE_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    checks = {
        "database": await database_reachable(gw),
        "catalog": len(gw.state.catalog) > 0,
    }
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, 200 if ready else 503)


async def database_reachable(gw: Gateway) -> bool:
    """A fresh round trip (``SELECT 1``) within DATABASE_TIMEOUT_S."""
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_S):
            async with gw.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; which one is logged
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return False
    return True


async def metrics(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    body, content_type = await asyncio.to_thread(gw.metrics.exposition)
    return Response(body, headers={"content-type": content_type})
