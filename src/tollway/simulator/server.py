"""The simulator's app, its in-process handle and its blocking runner.

Every endpoint module exposes ``setup(app)``; adding an endpoint (images,
videos...) means adding a module and listing it in ``ENDPOINT_MODULES``.
Paths of another provider's protocol (Anthropic's ``/v1/messages``, Gemini's
``models/{model}:verb``) belong to a ``Dialect``: it takes the api key from
that provider's header and words errors in that provider's shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from aiohttp import web

from . import (
    anthropic,
    audio,
    chat,
    completions,
    control,
    embeddings,
    gemini,
    images,
    models,
    moderations,
    rerank,
    responses,
    videos,
)
from .common import STATE, ApiError, Dialect, SimState, SimStats, error_body, json_response
from .config import SimulatorConfig

ENDPOINT_MODULES: tuple[ModuleType, ...] = (
    models,
    chat,
    responses,
    embeddings,
    completions,
    moderations,
    rerank,
    images,
    videos,
    audio,
    anthropic,
    gemini,
    control,
)
DIALECTS: tuple[Dialect, ...] = (anthropic.DIALECT, gemini.DIALECT)
MAX_BODY_BYTES = 64 * 1024 * 1024  # image inputs arrive as base64 data URLs
SHUTDOWN_TIMEOUT_S = 1.0  # stop() should not wait a minute for idle streams

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_key(request: web.Request) -> str:
    """The route's pattern (``/v1/videos/{id}``), so ids do not split the stats."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def _authorized(request: web.Request, api_key: str | None) -> bool:
    return api_key is None or request.headers.get("Authorization") == f"Bearer {api_key}"


def _dialect(path: str) -> Dialect | None:
    for dialect in DIALECTS:
        if dialect.owns(path):
            return dialect
    return None


def _check_key(request: web.Request, api_key: str | None, dialect: Dialect | None) -> None:
    if dialect is None:
        if not _authorized(request, api_key):
            raise ApiError(401)
    elif api_key is not None:
        dialect.check_key(request, api_key)


@web.middleware
async def sim_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts traffic, enforces the api key, turns errors into each protocol's shape."""
    state = request.app[STATE]
    control_call = request.path.startswith("/_sim/")
    dialect = None if control_call else _dialect(request.path)
    if not control_call:
        state.stats.count(_route_key(request))
    try:
        if not control_call:
            _check_key(request, state.config.api_key, dialect)
        resp = await handler(request)
    except ApiError as exc:
        resp = exc.response() if dialect is None else dialect.error_response(request, exc)
    except web.HTTPException as exc:  # routing: unknown path or method
        message = f"{exc.reason}: {request.path}"
        if dialect is None:
            resp = json_response(error_body(exc.status, message), exc.status)
        else:
            resp = dialect.error_response(request, ApiError(exc.status, message))
    if resp.status >= 400 and not control_call:
        state.stats.errors += 1
    return resp


def make_app(config: SimulatorConfig) -> web.Application:
    app = web.Application(middlewares=[sim_middleware], client_max_size=MAX_BODY_BYTES)
    app[STATE] = SimState(config)
    for module in ENDPOINT_MODULES:
        module.setup(app)
    return app


class Simulator:
    """A simulator running in this process (tests, ``tollway demo``)."""

    def __init__(self, app: web.Application, runner: web.AppRunner, host: str, port: int) -> None:
        self.app = app
        self._runner = runner
        self.host = host
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def stats(self) -> SimStats:
        """Live stats; ``stats.snapshot()`` is what ``GET /_sim/stats`` returns."""
        return self.app[STATE].stats

    @property
    def config(self) -> SimulatorConfig:
        return self.app[STATE].config

    def update_config(self, **changes: Any) -> None:
        """In-process ``POST /_sim/config``: validated, re-seeds on a new seed."""
        state = self.app[STATE]
        state.config.update(changes)
        if "seed" in changes:
            state.reseed()

    def reset(self) -> None:
        """In-process ``POST /_sim/reset``: zero the stats, re-seed the RNG."""
        self.stats.reset()
        self.app[STATE].reseed()

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> Simulator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def start(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> Simulator:
    """Serve the simulator on ``host:port`` (0: a free port) in the running loop."""
    app = make_app(config)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    return Simulator(app, runner, host, bound_port)


def _announce(sim: Simulator) -> None:
    print(f"Tollway upstream simulator listening on {sim.base_url}", flush=True)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(
    config: SimulatorConfig, host: str, port: int, on_ready: Callable[[Simulator], None]
) -> None:
    sim = await start(config, host, port)
    stopping = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    on_ready(sim)
    try:
        await stopping.wait()
    finally:
        await sim.stop()


def run(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    on_ready: Callable[[Simulator], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (the ``tollway simulate`` command), on uvloop if present.

    ``on_ready`` is called once listening; by default it prints the base URL.
    """
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=_loop_factory()) as runner,
    ):
        runner.run(_serve(config, host, port, on_ready or _announce))
