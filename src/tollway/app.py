"""The app factory: builds a gateway from a Settings object, nothing global.

The /v1 relay is plain Starlette (the hot path carries no framework layers it
does not use); the /api management API is a FastAPI app mounted beside it,
built on its first request: FastAPI and pydantic's models for it take memory
a worker that only relays never needs (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tollway import relay
from tollway.alerts.runner import run_alerts
from tollway.catalog import load_catalog_files
from tollway.counting import TokenCounter
from tollway.db.engine import make_engine, migrate
from tollway.errors import ApiError
from tollway.gateway import Gateway
from tollway.guard import BodyLimit, ErrorGuard
from tollway.key_vault import seal_plaintext_keys, vault_of
from tollway.ledger import Ledger
from tollway.limits import limiter_for
from tollway.manage.accounts import ensure_bootstrap_admin
from tollway.manage.channel_test import probe_forever
from tollway.observe import Metrics
from tollway.observe import health as probes
from tollway.observe.metrics import keep_gauges
from tollway.relay.fastpath import FastPath, errors_of_caller, refused
from tollway.routing import Health, Router
from tollway.settings import Settings
from tollway.state import State
from tollway.transport import Transport
from tollway.types import Model
from tollway.upstream import UpstreamPool
from tollway.videos.reconciler import reconcile_videos
from tollway.web import console_mount, create_web, session_secret

log = logging.getLogger(__name__)

RECONCILE_EVERY_S = 60


def create_app(
    settings: Settings,
    base_models: list[Model] | None = None,
    transport: Transport | None = None,
) -> FastPath:
    """The gateway's ASGI app. ``transport`` replaces the network to the
    upstreams (tests answer in-process with a MockTransport)."""
    models = load_catalog_files() if base_models is None else base_models

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running_gateway(settings, models, transport) as gw:
            app.state.gateway = gw
            yield

    def build_api() -> ASGIApp:
        from tollway.api import create_api

        api = create_api()
        api.state = app.state  # the running gateway, whichever lifespan set it
        return api

    web = create_web(
        session_secret(settings.secret_key, settings.data_dir),
        https_only=settings.secure_cookies,
        max_body_bytes=settings.max_body_bytes,
    )
    api = BodyLimit(OnFirstUse(build_api), settings.max_body_bytes)
    routes = [
        *relay.routes(),
        Route("/health", health, methods=["GET"]),
        Route("/healthz", probes.healthz, methods=["GET"]),
        Route("/readyz", probes.readyz, methods=["GET"]),
        Route("/metrics", probes.metrics, methods=["GET"]),
        Mount("/api", app=ErrorGuard(api)),
        console_mount(web),  # last: it claims only the console's own paths
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_exception_handler(404, _not_found)
    app.add_exception_handler(405, _not_allowed)
    return FastPath(app, relay.hot_endpoints())


class OnFirstUse:
    """An ASGI app built when its first request comes. The building (imports,
    mostly) runs on a thread, so calls in flight go on meanwhile; requests
    that come while it runs wait for the same app."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self.build = build
        self.app: ASGIApp | None = None
        self.building: asyncio.Future[ASGIApp] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            if self.building is None:
                self.building = asyncio.ensure_future(asyncio.to_thread(self.build))
            building = self.building
            try:
                self.app = await asyncio.shield(building)
            except Exception:
                if self.building is building:  # the next request tries again
                    self.building = None
                raise
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, models: list[Model], transport: Transport | None = None
) -> AsyncIterator[Gateway]:
    engine = make_engine(settings.database_url, settings.sqlite_synchronous)
    await migrate(engine)
    vault = vault_of(settings)
    await seal_plaintext_keys(engine, vault)  # channel keys written before encryption
    state = State(engine, models, settings.state_poll_ms, vault)
    metrics = Metrics()
    ledger = Ledger(engine, synchronous=settings.sqlite_synchronous, metrics=metrics)
    state.on_change(ledger.confirm_leases)  # an edit elsewhere may have returned our leases
    counter = TokenCounter()
    upstream = transport or UpstreamPool(settings.upstream_connect_timeout_s)
    health = Health(settings.channel_cooldown_s, on_cooldown=metrics.cooldown)
    router = Router(settings.channel_cooldown_s, settings.routing_strategy, health=health)
    limits = limiter_for(settings)
    gw = Gateway(settings, engine, state, ledger, upstream, counter, router, limits, metrics)
    await state.start()
    await ledger.start()
    if settings.admin_key:
        await ensure_bootstrap_admin(gw, settings.admin_key)
    reconciler = asyncio.create_task(_reconcile(gw), name="tollway-reconciler")
    videos = asyncio.create_task(reconcile_videos(gw), name="tollway-video-reconciler")
    alerts = asyncio.create_task(run_alerts(gw, settings.alerts_every_s), name="tollway-alerts")
    gauges = asyncio.create_task(keep_gauges(metrics), name="tollway-gauges")
    tasks = [videos, reconciler, alerts, gauges]
    if settings.channel_probe_s:
        probe = probe_forever(gw, settings.channel_probe_s)
        tasks.append(asyncio.create_task(probe, name="tollway-channel-probe"))
    # What start-up built lives as long as the process: keep it out of the
    # collector's full passes, which otherwise show up as slow calls.
    gc.freeze()
    try:
        yield gw
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await ledger.stop()
        await state.stop()
        await upstream.close()
        await gw.limits.close()
        await engine.dispose()


async def _reconcile(gw: Gateway) -> None:
    """Release holds that a stopped process left open, now and then."""
    stale_after = timedelta(seconds=gw.settings.upstream_timeout_s * 2 + 60)
    while True:
        try:
            released = await gw.ledger.release_stale_holds(stale_after)
            if released:
                log.warning("released %d stale holds", released)
        except Exception:
            log.exception("stale-hold reconciliation failed; will retry")
        await asyncio.sleep(RECONCILE_EVERY_S)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _not_found(request: Request, exc: Exception) -> Response:
    path = request.url.path[:200]
    error = ApiError(404, f"No such endpoint: {request.method} {path}", "not_found")
    refused(request, error)
    return errors_of_caller(error, request)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    path = request.url.path[:200]
    error = ApiError(405, f"{request.method} is not allowed on {path}", "method_not_allowed")
    refused(request, error)
    return errors_of_caller(error, request)
