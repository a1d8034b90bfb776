"""Who is signed in, and proof that a form came from our own page.

The session is a signed cookie (Starlette's SessionMiddleware, itsdangerous):
it carries the account id, a fingerprint of the password hash (so changing a
password signs out every other session), a CSRF token and one-shot flash
messages. Every request re-reads the account, so a disabled account or a
demoted admin loses access at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tollway.db.schema import accounts
from tollway.errors import ApiError, forbidden
from tollway.gateway import Gateway
from tollway.manage.accounts import SESSION_ACCOUNT, Account

ROOT_APP = "tollway.root_app"
CSRF_FIELD = "csrf"

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


def _fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


async def _session_account(request: Request) -> Account | None:
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        return None
    async with gateway(request).engine.connect() as conn:
        row = (await conn.execute(select(accounts).where(accounts.c.id == uid))).mappings().first()
    if (
        row is None
        or not row["enabled"]
        or request.session.get("pw") != _fingerprint(row["password_hash"])
    ):
        request.session.pop("uid", None)
        return None
    return Account(row["id"], row["username"], row["role"], row["enabled"])


async def sign_in(request: Request, account: Account) -> None:
    """Start a fresh session (a new CSRF token: no fixation across sign-in)."""
    async with gateway(request).engine.connect() as conn:
        pw_hash = (
            await conn.execute(select(accounts.c.password_hash).where(accounts.c.id == account.id))
        ).scalar_one()
    request.session.clear()
    request.session.update(
        {"uid": account.id, "pw": _fingerprint(pw_hash), CSRF_FIELD: secrets.token_urlsafe(32)}
    )


def sign_out(request: Request) -> None:
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
