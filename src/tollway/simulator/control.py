"""``/_sim/*``: test controls. Not counted in stats and never behind the api key."""

from __future__ import annotations

from aiohttp import web

from .common import STATE, ApiError, json_response, read_json
from .config import ConfigError


async def get_stats(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].stats.snapshot())


async def reset(request: web.Request) -> web.Response:
    """Zero the stats and re-seed the RNG, so a test can replay a fault sequence."""
    state = request.app[STATE]
    state.stats.reset()
    state.reseed()
    return json_response(state.stats.snapshot())


async def get_config(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].config.to_dict())


async def set_config(request: web.Request) -> web.Response:
    """Change settings at runtime; a new ``seed`` re-seeds the RNG at once."""
    state = request.app[STATE]
    changes = await read_json(request, record=False)  # control calls are not traffic
    try:
        state.config.update(changes)
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from exc
    if "seed" in changes:
        state.reseed()
    return json_response(state.config.to_dict())


async def recent_requests(request: web.Request) -> web.Response:
    """The last JSON bodies received (newest last), to check what a gateway forwarded."""
    return json_response(list(request.app[STATE].stats.recent))


def setup(app: web.Application) -> None:
    app.router.add_get("/_sim/stats", get_stats)
    app.router.add_post("/_sim/reset", reset)
    app.router.add_get("/_sim/config", get_config)
    app.router.add_post("/_sim/config", set_config)
    app.router.add_get("/_sim/requests", recent_requests)
