"""The console app: server-rendered pages (Starlette + Jinja2), signed-cookie
sessions, CSRF on every form, strict security headers.

It is mounted in the gateway's app with ``console_mount``, which claims only
the console's own paths: /v1 and /api keep their own 404 and 405 answers.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollway.errors import ApiError, internal_error
from tollway.guard import BodyLimit, ErrorGuard
from tollway.settings import Settings
from tollway.web import (
    admin,
    admin_catalog,
    advisor,
    alerts,
    audit,
    auth,
    catalog,
    channels,
    groups,
    margins,
    tokens,
    usage,
)
from tollway.web.render import render
from tollway.web.session import ROOT_APP, flash
from tollway.web.throttle import Throttle

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "tollway_session"
SESSION_MAX_AGE_S = 12 * 3600
DEFAULT_MAX_BODY_BYTES = Settings.max_body_bytes
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_web(
    secret_key: str,
    *,
    https_only: bool = False,
    max_age_s: int = SESSION_MAX_AGE_S,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """The console. ``secret_key`` signs session cookies (see ``session_secret``);
    ``https_only`` marks them Secure (set it when served over HTTPS); a form
    larger than ``max_body_bytes`` gets a 413 page."""
    routes: list[BaseRoute] = [
        *auth.routes(),
        *tokens.routes(),
        *catalog.routes(),
        *usage.routes(),
        *advisor.routes(),
        *admin.routes(),
        *admin_catalog.routes(),
        *channels.routes(),
        *groups.routes(),
        *margins.routes(),
        *alerts.routes(),
        *audit.routes(),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(BodyLimit, max_bytes=max_body_bytes),
        Middleware(
            SessionMiddleware,
            secret_key=secret_key,
            session_cookie=SESSION_COOKIE,
            max_age=max_age_s,
            same_site="lax",
            https_only=https_only,
        ),
    ]
    web = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    web.state.throttle = Throttle()
    web.state.session_lifetime_s = max_age_s  # the server-side session's too (web/session.py)
    return web


class ConsoleMount(Mount):
    """Mounts the console at the root, but claims only the paths it serves."""

    def __init__(self, web: Starlette) -> None:
        super().__init__("/", app=ErrorGuard(web, plain_page))
        self.web = web

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.NONE:
            return match, child_scope
        if not any(route.matches(scope)[0] is not Match.NONE for route in self.web.routes):
            return Match.NONE, {}
        return match, {**child_scope, ROOT_APP: scope.get("app")}


def console_mount(web: Starlette) -> ConsoleMount:
    return ConsoleMount(web)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status == 401:
        flash(request, "Your session has ended; sign in again.", "error")
        return RedirectResponse("/signin", status_code=303)
    context = {"status": exc.status, "message": exc.message, "code": exc.code}
    return render(request, "error.html", context, status=exc.status)


def plain_page(error: ApiError) -> Response:
    """An error page that needs no session or template: for what fails before
    (or while) the console's own pages can be rendered."""
    title = "Something went wrong" if error.status >= 500 else "That did not work"
    page = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{error.status}</title>"
        f"<h1>{title}</h1><p>{html.escape(error.message)}</p><p><a href=/>Back</a></p></html>"
    )
    return HTMLResponse(page, error.status, headers=SECURITY_HEADERS)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette sends this, then re-raises for ErrorGuard (around the console) to log.
    return plain_page(internal_error())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "There is no such page.", 405: "This page does not take that request."}
    message = messages.get(exc.status_code, str(exc.detail))
    context = {"status": exc.status_code, "message": message, "code": "http_error"}
    return render(request, "error.html", context, status=exc.status_code)
