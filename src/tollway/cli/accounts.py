"""`tollway user ...`: create accounts, list them with balances, credit or debit."""

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
    parse_usd,
    run,
    stdout,
    table,
    usd,
    when,
    yes_no,
)
from tollway.errors import bad_request

if TYPE_CHECKING:
    from tollway.gateway import Gateway

MIN_PASSWORD_CHARS = 8

group = typer.Typer(
    name="user",
    help="Accounts: create, list, credit or debit, price groups.",
    no_args_is_help=True,
)


@group.command("create")
def create_user(
    username: Annotated[str, typer.Argument(help="The new account's username.")],
    role: Annotated[str, typer.Option(help="admin or user.")] = "user",
    password_prompt: Annotated[
        bool, typer.Option("--password-prompt", help="Ask for a password (web console).")
    ] = False,
) -> None:
    """Create an account; prints its id and management key (shown once)."""
    password = _ask_password() if password_prompt else None

    async def work(gw: Gateway) -> tuple[dict[str, Any], str]:
        from tollway.manage.accounts import create_account

        return await create_account(gw, username, password, role)

    account, key = run(work)
    out = stdout()
    out.print(f"Created {account['role']} {account['username']!r} with id {account['id']}.")
    out.print("Management key (shown once, store it now):")
    out.print(key, soft_wrap=True, highlight=False)


@group.command("list")
def list_users() -> None:
    """Every account with its balance (held: reserved by calls in flight)."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        from tollway.manage.accounts import list_accounts

        return await list_accounts(gw)

    stdout().print(_accounts_table(run(work)))


# A negative amount ("-5") must reach the command as an argument, not an option.
@group.command("set-groups")
def set_groups(
    user: Annotated[str, typer.Argument(help="The account's username or id.")],
    groups: Annotated[list[str], typer.Argument(help="The price groups its tokens may use.")],
) -> None:
    """Set the price groups an account's tokens may use (see `tollway group list`)."""

    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage.accounts import set_groups

        account = await find_account(gw, user)
        return await set_groups(gw, account["id"], groups)

    account = run(work)
    stdout().print(
        f"Account {account['username']!r} (id {account['id']}) may use the groups: "
        f"{', '.join(account['groups'])}.",
        highlight=False,
    )


@group.command("set-limits")
def set_limits(
    user: Annotated[str, typer.Argument(help="The account's username or id.")],
    rpm: Rpm = None,
    tpm: Tpm = None,
    concurrent: Concurrent = None,
) -> None:
    """Set an account's rate limits, which all its tokens count against; "none" lifts one."""
    account = _set_limits(user, limit_changes(rpm, tpm, concurrent, required=True))
    _said(account, f"is limited to: {limits_text(account)}")


@group.command("set-budget")
def set_budget(
    user: Annotated[str, typer.Argument(help="The account's username or id.")],
    amount_usd: Annotated[str, typer.Argument(help='USD per period, or "none".')],
    per: Per = "month",
) -> None:
    """Set how much an account (all its tokens) may spend per day, week or month (UTC)."""
    account = _set_limits(user, budget_changes(amount_usd, per))
    _said(account, f"budget: {budget_text(account)}")


def _set_limits(user: str, changes: dict[str, Any]) -> dict[str, Any]:
    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage.accounts import set_limits

        account = await find_account(gw, user)
        return await set_limits(gw, account["id"], changes)

    return run(work)


def _said(account: dict[str, Any], what: str) -> None:
    stdout().print(f"Account {account['username']!r} (id {account['id']}) {what}.", highlight=False)


@group.command("credit", context_settings={"ignore_unknown_options": True})
def credit_user(
    user: Annotated[str, typer.Argument(help="The account's username or id.")],
    amount_usd: Annotated[
        str, typer.Argument(help="USD, exact (e.g. 10 or 0.10); negative debits.")
    ],
    reason: Annotated[str, typer.Option(help="Why; kept in the ledger.")],
) -> None:
    """Credit an account (or debit it, with a negative amount); prints the new balance."""
    amount_nano = parse_usd(amount_usd, "AMOUNT_USD")

    async def work(gw: Gateway) -> tuple[dict[str, Any], dict[str, Any]]:
        from tollway.manage.accounts import credit

        account = await find_account(gw, user)
        return account, await credit(gw, account["id"], amount_nano, reason)

    account, result = run(work)
    done = "Debited" if amount_nano < 0 else "Credited"
    stdout().print(
        f"{done} {usd(abs(amount_nano))} USD, account {account['username']!r} "
        f"(id {account['id']}). New balance: {result['balance_usd']} USD",
        highlight=False,
    )


def _ask_password() -> str:
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_CHARS:
        raise bad_request(f"A password needs at least {MIN_PASSWORD_CHARS} characters.")
    return password


def _accounts_table(accounts: list[dict[str, Any]]) -> Table:
    money = ("balance USD", "held USD", "available USD")
    shown = table(
        "Accounts",
        "id",
        "username",
        "role",
        *money,
        "enabled",
        "created (UTC)",
        "groups",
        "limits",
        "budget",
        right=("id", *money),
    )
    for a in accounts:
        shown.add_row(
            str(a["id"]),
            a["username"],
            a["role"],
            a["balance_usd"],
            a["held_usd"],
            a["available_usd"],
            yes_no(a["enabled"]),
            when(a["created_at"]),
            ", ".join(a["groups"]),
            limits_text(a),
            budget_text(a),
        )
    return shown
