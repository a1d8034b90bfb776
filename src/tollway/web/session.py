"""Who is signed in, and proof that a form came from our own page.

The cookie is signed (Starlette's SessionMiddleware, itsdangerous) and
carries a session id, a CSRF token and one-shot flash messages. The session
itself is a database row (tollway.manage.sessions): signing out deletes it, so
a copy of the cookie is dead too, on every process; a password change or a
disabled account deletes all the account's. Every request reads the session
and its account in one query, so a disabled account or a demoted admin loses
access at once. A cookie without a session id (older ones) is signed out.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tollway.errors import ApiError, forbidden
from tollway.gateway import Gateway
from tollway.manage import audit, sessions
from tollway.manage.accounts import SESSION_ACCOUNT, Account

ROOT_APP = "tollway.root_app"
CSRF_FIELD = "csrf"
SESSION_ID = "sid"

Handler = Callable[[Request], Awaitable[Response]]


def gateway(request: Request) -> Gateway:
    """The running gateway of the app the console is mounted in."""
    root = request.scope.get(ROOT_APP) or request.app
    gw: Gateway = root.state.gateway
    return gw


def account_of(request: Request) -> Account:
    """The signed-in account (set by ``page``/``admin_page``)."""
    account = request.scope.get(SESSION_ACCOUNT)
    assert isinstance(account, Account), "handler not wrapped by page()"
    return account


def _lifetime_s(request: Request) -> int:
    """How long a session lives unused: the cookie's max age (``create_web``)."""
    lifetime: int = request.app.state.session_lifetime_s
    return lifetime


def has_session(request: Request) -> bool:
    """Whether the cookie names a session (``page`` checks that it is live)."""
    return isinstance(request.session.get(SESSION_ID), str)


async def _session_account(request: Request) -> Account | None:
    session_id = request.session.get(SESSION_ID)
    if not isinstance(session_id, str):
        return None
    account = await sessions.account_of(gateway(request), session_id, _lifetime_s(request))
    if account is None:
        request.session.pop(SESSION_ID, None)
    return account


async def sign_in(request: Request, account: Account) -> None:
    """Start a fresh session: a new id and a new CSRF token (no fixation across
    sign-in); the one the cookie named before, if any, ends."""
    await sign_out(request)
    session_id = await sessions.start(gateway(request), account.id, _lifetime_s(request))
    request.session.update({SESSION_ID: session_id, CSRF_FIELD: secrets.token_urlsafe(32)})


async def sign_out(request: Request) -> None:
    """End this browser's session, server-side: a copy of the cookie is dead too."""
    session_id = request.session.get(SESSION_ID)
    if isinstance(session_id, str):
        await sessions.end(gateway(request), session_id)
    request.session.clear()


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get(CSRF_FIELD)
    if (
        not isinstance(sent, str)
        or not isinstance(expected, str)
        or not secrets.compare_digest(sent, expected)
    ):
        raise forbidden(
            "This form has expired or did not come from this site. Reload the page and try again.",
            "csrf_failed",
        )
    return form


def flash(request: Request, message: str, kind: str = "ok") -> None:
    # Assigned, not appended: the session saves only what is set on it.
    request.session["flash"] = [*request.session.get("flash", []), [kind, message]]


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    return [(kind, text) for kind, text in request.session.pop("flash", [])]


def _to_signin(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def page(handler: Handler) -> Handler:
    """A page for signed-in accounts; POSTs must carry the CSRF token."""

    async def wrapped(request: Request) -> Response:
        account = await _session_account(request)
        if account is None:
            if request.method != "GET":
                raise ApiError(401, "Sign in first.", "not_signed_in", "authentication_error")
            return _to_signin(request)
        request.scope[SESSION_ACCOUNT] = account
        audit.acting(account.id, account.username, account.is_admin)
        if request.method == "POST":
            request.state.form = await checked_form(request)
        return await handler(request)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def admin_page(handler: Handler) -> Handler:
    async def only_admins(request: Request) -> Response:
        if not account_of(request).is_admin:
            raise forbidden("Only an admin may open this page.", "admin_only")
        return await handler(request)

    only_admins.__name__ = handler.__name__
    return page(only_admins)


def form_of(request: Request) -> FormData:
    form: FormData = request.state.form
    return form


def field(form: FormData, name: str, default: str = "") -> str:
    value: Any = form.get(name, default)
    return value.strip() if isinstance(value, str) else default
