"""Admin: accounts (create, credit/debit with a reason, enable/disable, set a
password, the price groups its tokens may use, its rate limits and budget)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollway.errors import ApiError, bad_request
from tollway.manage import accounts as service
from tollway.manage.groups import list_groups
from tollway.types import nano_to_usd
from tollway.web import forms
from tollway.web.render import NO_STORE, render
from tollway.web.session import account_of, admin_page, field, flash, form_of, gateway

MIN_PASSWORD_CHARS = 8


def routes() -> list[Route]:
    return [
        Route("/admin/accounts", accounts_page, methods=["GET"]),
        Route("/admin/accounts", create_account, methods=["POST"]),
        Route("/admin/accounts/{account_id:int}/credit", credit, methods=["POST"]),
        Route("/admin/accounts/{account_id:int}/enabled", set_enabled, methods=["POST"]),
        Route("/admin/accounts/{account_id:int}/password", set_password, methods=["POST"]),
        Route("/admin/accounts/{account_id:int}/groups", set_groups, methods=["POST"]),
        Route("/admin/accounts/{account_id:int}/limits", set_limits, methods=["POST"]),
    ]


async def _accounts(request: Request, status: int = 200, error: str | None = None) -> Response:
    gw = gateway(request)
    accounts = await service.list_accounts(gw)
    for account in accounts:
        account["limits_form"] = forms.limits_form(account)
    context = {
        "accounts": accounts,
        "groups": await list_groups(gw),
        "error": error,
    }
    return render(request, "admin_accounts.html", context, status=status)


@admin_page
async def accounts_page(request: Request) -> Response:
    return await _accounts(request)


@admin_page
async def create_account(request: Request) -> Response:
    form = form_of(request)
    username, role = field(form, "username"), field(form, "role", "user")
    password = str(form.get("password") or "")
    try:
        if password and len(password) < MIN_PASSWORD_CHARS:
            raise bad_request(f"A password needs at least {MIN_PASSWORD_CHARS} characters.")
        view, key = await service.create_account(gateway(request), username, password or None, role)
    except ApiError as exc:
        return await _accounts(request, 400, exc.message)
    context = {"created": view, "key": key, "has_password": bool(password)}
    return render(request, "admin_account_created.html", context, headers=NO_STORE)


@admin_page
async def credit(request: Request) -> Response:
    account_id: int = request.path_params["account_id"]
    form = form_of(request)
    try:
        amount = forms.money_nano(field(form, "amount_usd"), "Amount", "amount_usd")
        done = await service.credit(gateway(request), account_id, amount, field(form, "reason"))
    except ApiError as exc:
        if exc.status == 404:
            raise
        flash(request, exc.message, "error")
        return RedirectResponse("/admin/accounts", status_code=303)
    word = "Debited" if amount < 0 else "Credited"
    flash(request, f"{word} ${nano_to_usd(abs(amount))}. New balance: ${done['balance_usd']}.")
    return RedirectResponse("/admin/accounts", status_code=303)


@admin_page
async def set_enabled(request: Request) -> Response:
    account_id: int = request.path_params["account_id"]
    enabled = field(form_of(request), "enabled") == "1"
    if account_id == account_of(request).id and not enabled:
        flash(request, "You cannot disable your own account.", "error")
        return RedirectResponse("/admin/accounts", status_code=303)
    view = await service.set_enabled(gateway(request), account_id, enabled)
    flash(request, f"Account {view['username']} is {'enabled' if enabled else 'disabled'}.")
    return RedirectResponse("/admin/accounts", status_code=303)


@admin_page
async def set_password(request: Request) -> Response:
    account_id: int = request.path_params["account_id"]
    gw = gateway(request)
    view = await service.account_view(gw, account_id)
    try:
        await service.set_password(gw, account_id, str(form_of(request).get("password") or ""))
    except ApiError as exc:
        flash(request, exc.message, "error")
    else:
        flash(request, f"Password set for {view['username']}; their other sessions end.")
    return RedirectResponse("/admin/accounts", status_code=303)


@admin_page
async def set_groups(request: Request) -> Response:
    """The checked groups, as PATCH /api/users/{id} {groups} sets them."""
    account_id: int = request.path_params["account_id"]
    gw = gateway(request)
    view = await service.account_view(gw, account_id)
    names = [n.strip() for n in form_of(request).getlist("groups") if isinstance(n, str)]
    try:
        done = await service.set_groups(gw, account_id, [n for n in names if n])
    except ApiError as exc:
        flash(request, f"Groups of {view['username']} not changed: {exc.message}", "error")
    else:
        groups = ", ".join(done["groups"])
        flash(request, f"{view['username']} may use the price groups {groups}.")
    return RedirectResponse("/admin/accounts", status_code=303)


@admin_page
async def set_limits(request: Request) -> Response:
    """Rate limits and budget, as PATCH /api/users/{id} sets them; blank lifts one."""
    account_id: int = request.path_params["account_id"]
    gw = gateway(request)
    view = await service.account_view(gw, account_id)
    form = form_of(request)
    values = {name: field(form, name) for name in forms.LIMIT_FORM_FIELDS}
    try:
        changes = forms.unchanged_budget_dropped(forms.limits(values), view)
        await service.set_limits(gw, account_id, changes)
    except ApiError as exc:
        flash(request, f"Limits of {view['username']} not changed: {exc.message}", "error")
    else:
        flash(request, f"Set the limits and budget of {view['username']}.")
    return RedirectResponse("/admin/accounts", status_code=303)
