"""`tollway token ...`: API keys, each with its billing mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tollway.cli.limits import (
    Concurrent,
    Per,
    Rpm,
    Tpm,
    budget_changes,
    budget_text,
    limit_changes,
    limits_text,
)
from tollway.cli.support import (
    find_account,
    mode_label,
    parse_time,
    parse_usd,
    run,
    stdout,
    table,
    when,
    yes_no,
)
from tollway.types import DEFAULT_BILLING_MODE

if TYPE_CHECKING:
    from tollway.gateway import Gateway

TokenId = Annotated[int, typer.Argument(help="The token's id (see `tollway token list`).")]


group = typer.Typer(
    name="token",
    help="API keys: create, list, change mode, price group, limits or budget, disable, delete.",
    no_args_is_help=True,
)


@group.command("create")
def create_token(
    user: Annotated[str, typer.Option("--user", help="Owner: username or id.")],
    name: Annotated[str, typer.Option("--name", help="A name to tell the key by.")],
    mode: Annotated[
        str, typer.Option("--mode", help="Billing mode (see `tollway modes`).")
    ] = DEFAULT_BILLING_MODE.value,
    quota: Annotated[
        str | None, typer.Option("--quota", help="Spending cap in USD (default: none).")
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="ISO 8601 expiry (default: never).")
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", help="Allow only this model (repeat for more)."),
    ] = None,
    price_group: Annotated[
        str | None,
        typer.Option("--group", help="Price group, one of the user's, or auto (default: default)."),
    ] = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    concurrent: Concurrent = None,
) -> None:
    """Create an API key; prints the key (shown once) and the token."""
    quota_nano = None if quota is None else parse_usd(quota, "--quota")
    expires_at = parse_time(expires, "--expires")
    limits = limit_changes(rpm, tpm, concurrent)

    async def work(gw: Gateway) -> tuple[dict[str, Any], str]:
        from tollway.manage import tokens as service

        owner = await find_account(gw, user)
        token = await service.create_token(
            gw,
            owner["id"],
            name,
            mode,
            quota_nano,
            expires_at,
            models or None,
            price_group,
            limits,
        )
        return token, owner["username"]

    token, owner = run(work)
    out = stdout()
    out.print("API key (shown once, store it now):")
    out.print(token["key"], soft_wrap=True, highlight=False)
    out.print(tokens_table([token], {token["account_id"]: owner}, title="Token"))


@group.command("list")
def list_tokens(
    user: Annotated[
        str | None, typer.Option("--user", help="Only this account's (username or id).")
    ] = None,
) -> None:
    """API keys (all accounts', or one account's), with mode, quota and use."""

    async def work(gw: Gateway) -> tuple[list[dict[str, Any]], dict[int, str]]:
        from tollway.manage import tokens as service
        from tollway.manage.accounts import list_accounts

        owner = None if user is None else (await find_account(gw, user))["id"]
        names = {a["id"]: a["username"] for a in await list_accounts(gw)}
        return await service.list_tokens(gw, owner), names

    found, names = run(work)
    stdout().print(tokens_table(found, names))


@group.command("set-mode")
def set_mode(
    token_id: TokenId,
    mode: Annotated[str, typer.Argument(help="The new billing mode.")],
) -> None:
    """Change a token's billing mode; it applies from the next call."""
    token = _update(token_id, {"billing_mode": mode})
    stdout().print(
        f"Token {token_id} ({token['name']!r}) now bills by "
        f"{mode_label(token['billing_mode'])}, from its next call.",
        highlight=False,
    )


@group.command("set-group")
def set_group(
    token_id: TokenId,
    group_name: Annotated[str, typer.Argument(help="One of its user's groups, or auto.")],
) -> None:
    """Move a token to another price group; it applies from the next call."""
    token = _update(token_id, {"group": group_name})
    stdout().print(
        f"Token {token_id} ({token['name']!r}) is now priced in group {token['group']!r}, "
        "from its next call.",
        highlight=False,
    )


@group.command("set-limits")
def set_limits(
    token_id: TokenId, rpm: Rpm = None, tpm: Tpm = None, concurrent: Concurrent = None
) -> None:
    """Set a token's rate limits (its account's bind it too); "none" lifts one."""
    changes = limit_changes(rpm, tpm, concurrent, required=True)
    token = _update(token_id, changes)
    stdout().print(
        f"Token {token_id} ({token['name']!r}) is limited to: {limits_text(token)}.",
        highlight=False,
    )


@group.command("set-budget")
def set_budget(
    token_id: TokenId,
    amount_usd: Annotated[str, typer.Argument(help='USD per period, or "none".')],
    per: Per = "month",
) -> None:
    """Set how much a token may spend per day, week or month (UTC)."""
    token = _update(token_id, budget_changes(amount_usd, per))
    stdout().print(
        f"Token {token_id} ({token['name']!r}) budget: {budget_text(token)}.", highlight=False
    )


@group.command("disable")
def disable(token_id: TokenId) -> None:
    """Stop a token from working (until enabled again)."""
    token = _update(token_id, {"enabled": False})
    stdout().print(f"Token {token_id} ({token['name']!r}) is disabled.", highlight=False)


@group.command("enable")
def enable(token_id: TokenId) -> None:
    """Let a disabled token work again."""
    token = _update(token_id, {"enabled": True})
    stdout().print(f"Token {token_id} ({token['name']!r}) is enabled.", highlight=False)


@group.command("delete")
def delete(token_id: TokenId) -> None:
    """Delete a token for good (its usage records stay)."""

    async def work(gw: Gateway) -> None:
        from tollway.manage import tokens as service

        await service.delete_token(gw, None, token_id)

    run(work)
    stdout().print(f"Token {token_id} is deleted.", highlight=False)


def _update(token_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage import tokens as service

        return await service.update_token(gw, None, token_id, changes)

    return run(work)


def tokens_table(
    found: list[dict[str, Any]], owners: dict[int, str], title: str = "Tokens"
) -> Table:
    shown = table(
        title,
        "id",
        "user",
        "name",
        "key prefix",
        "billing mode",
        "quota USD",
        "used USD",
        "expires (UTC)",
        "models",
        "enabled",
        "last used (UTC)",
        "group",
        "limits",
        "budget",
        right=("id", "quota USD", "used USD"),
    )
    for t in found:
        shown.add_row(
            str(t["id"]),
            owners.get(t["account_id"], str(t["account_id"])),
            t["name"],
            t["key_prefix"],
            mode_label(t["billing_mode"]),
            t["quota_usd"] or "none",
            t["used_usd"],
            when(t["expires_at"]),
            ", ".join(t["models"]) if t["models"] else "all",
            yes_no(t["enabled"]),
            when(t["last_used_at"]),
            t["group"],
            limits_text(t),
            budget_text(t),
        )
    return shown
