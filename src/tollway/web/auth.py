"""Sign in, sign out, and the account page (balance, password)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollway.errors import ApiError
from tollway.manage import accounts as service
from tollway.web.render import render
from tollway.web.session import (
    account_of,
    checked_form,
    field,
    flash,
    form_of,
    gateway,
    has_session,
    page,
    sign_in,
    sign_out,
)
from tollway.web.throttle import Throttle

HOME = "/tokens"
TOO_MANY = "Too many failed attempts. Wait a few minutes."


def routes() -> list[Route]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/account", account_page, methods=["GET"]),
        Route("/account/password", change_password, methods=["POST"]),
    ]


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never '//host' or 'https://host' (open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    return target


async def home(request: Request) -> Response:
    return RedirectResponse(HOME if has_session(request) else "/signin", 303)


async def signin_page(request: Request) -> Response:
    nxt = _safe_next(request.query_params.get("next"))
    if has_session(request):  # signed in already (page() re-checks the session)
        return RedirectResponse(nxt, status_code=303)
    return render(request, "signin.html", {"next": nxt, "username": ""})


def _attempts_key(request: Request, username: str) -> str:
    """Whose password attempts the throttle counts: this client's, for this
    username, wherever a password is checked (sign-in and the password form)."""
    return f"{request.client.host if request.client else '-'}|{username.casefold()}"


async def signin(request: Request) -> Response:
    form = await checked_form(request)
    username, password = field(form, "username"), str(form.get("password") or "")
    nxt = _safe_next(field(form, "next"))
    throttle: Throttle = request.app.state.throttle
    who = _attempts_key(request, username)
    if not throttle.attempt(who):  # counted before the slow hash, so bursts are too
        return _signin_error(request, username, nxt, TOO_MANY, 429)
    account = await service.by_password(gateway(request), username, password) if username else None
    if account is None:
        return _signin_error(request, username, nxt, "Wrong username or password.", 401)
    throttle.forget(who)
    await sign_in(request, account)
    return RedirectResponse(nxt, status_code=303)


def _signin_error(request: Request, username: str, nxt: str, message: str, status: int) -> Response:
    context = {"next": nxt, "username": username, "error": message}
    return render(request, "signin.html", context, status=status)


async def signout(request: Request) -> Response:
    await checked_form(request)
    await sign_out(request)
    flash(request, "You are signed out.")
    return RedirectResponse("/signin", status_code=303)


@page
async def account_page(request: Request) -> Response:
    return await _account_page(request)


async def _account_page(request: Request, status: int = 200) -> Response:
    gw = gateway(request)
    me = account_of(request)
    view = await service.account_view(gw, me.id)
    credits = await service.credits_of(gw, me.id, limit=20)
    return render(request, "account.html", {"me": view, "credits": credits}, status=status)


@page
async def change_password(request: Request) -> Response:
    gw = gateway(request)
    me = account_of(request)
    form = form_of(request)
    current, new = str(form.get("current") or ""), str(form.get("new") or "")
    throttle: Throttle = request.app.state.throttle
    who = _attempts_key(request, me.username)  # one count with sign-in's
    if not throttle.attempt(who):
        flash(request, TOO_MANY, "error")
        return await _account_page(request, 429)
    if await service.by_password(gw, me.username, current) is None:
        flash(request, "The current password is wrong; nothing changed.", "error")
        return RedirectResponse("/account", status_code=303)
    throttle.forget(who)
    try:
        await service.set_password(gw, me.id, new)  # ends every session of the account
    except ApiError as exc:
        flash(request, exc.message, "error")
        return RedirectResponse("/account", status_code=303)
    await sign_in(request, me)  # this browser stays, in a new session
    flash(request, "Password changed. Other sessions are signed out.")
    return RedirectResponse("/account", status_code=303)
