"""What every command shares: the one place user errors are caught, the
gateway operator commands run against, input parsing, and table output.

Operator commands act on the database through the same services as the HTTP
API (``running_gateway``), configured by the same TOLLWAY_* variables. The
services are imported when a command runs, not when the CLI is built, so
``tollway --help`` and ``tollway serve`` do not pay for loading them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from tollway.billing.modes import MODE_INFO
from tollway.errors import ApiError, bad_request, not_found
from tollway.settings import Settings, SettingsError
from tollway.timeutil import parse_iso
from tollway.types import (
    NANO_PER_USD,
    BillingMode,
    Model,
    MoneyError,
    nano_to_usd,
    usd_to_nano,
)

if TYPE_CHECKING:
    from tollway.gateway import Gateway

T = TypeVar("T")
Choice = TypeVar("Choice", bound=StrEnum)


def stdout() -> Console:
    # Made per use: Console reads COLUMNS when built, and tests set it.
    return Console()


def fail(message: str) -> NoReturn:
    Console(stderr=True).print(Text(message, style="red"), soft_wrap=True)
    raise typer.Exit(1)


class FailsCleanly(TyperGroup):
    """The root command group: a user error raised by any command below it
    (ApiError from the services, bad settings) prints in red on stderr and
    exits 1, with no traceback. Caught here, once, so a command registered the
    plain typer way cannot forget it."""

    # Any: the base method takes typer's vendored click Context, which typer does
    # not export (typer.Context is a subclass: too narrow for an override).
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (ApiError, SettingsError) as exc:
            fail(str(exc))


def run(work: Callable[[Gateway], Awaitable[T]]) -> T:
    """Run ``work`` against a gateway built from the environment, as the server is."""
    settings = Settings.from_env()

    async def go() -> T:
        from tollway.app import running_gateway
        from tollway.manage.audit import acting_as_cli

        acting_as_cli()  # the operator at the machine: every change is audited

        async with running_gateway(settings, list(shipped_models())) as gw:
            return await work(gw)

    return asyncio.run(go())


@functools.cache
def shipped_models() -> tuple[Model, ...]:
    """The catalog's data files, read once per process: they do not change while
    it runs, and parsing them is most of a command's start-up."""
    from tollway.catalog import load_catalog_files

    return tuple(load_catalog_files())


# Parsing: every bad value becomes an ApiError, so it fails like a service error.


# The most `prices import --markup` adds (a hundredfold), so marked-up prices
# stay far inside the maximum a price may be.
MAX_MARKUP_PERCENT = 10_000


def parse_usd(text: str, what: str) -> int:
    """A USD amount as exact nano-USD, parsed from its text (never a float):
    plain digits, within the maximum (``tollway.types.usd_to_nano``)."""
    try:
        return usd_to_nano(text.strip())
    except MoneyError as exc:
        raise bad_request(f"{what}: {exc}; give a decimal amount in USD, e.g. 10.50.") from None


def parse_percent(text: str, what: str) -> Decimal:
    """A percentage from 0 to MAX_MARKUP_PERCENT, at most 9 decimals, plain digits."""
    try:
        nano = usd_to_nano(text.strip().removesuffix("%"))  # the same plain-decimal rules
    except MoneyError:
        raise bad_request(f"{what}: not a percentage: {text!r}.") from None
    value = Decimal(nano) / NANO_PER_USD
    if not 0 <= value <= MAX_MARKUP_PERCENT:
        raise bad_request(
            f"{what} must be a percentage from 0 to {MAX_MARKUP_PERCENT}, not {text}."
        )
    return value


def parse_time(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_iso(text.strip()).astimezone(UTC)
    except (ValueError, OverflowError):  # Overflow: past year 9999 once in UTC
        raise bad_request(
            f"{what}: not an ISO 8601 time: {text!r} (e.g. 2026-12-31 or 2026-12-31T23:59:00Z)."
        ) from None


def parse_choice(choices: type[Choice], text: str, what: str) -> Choice:
    """One of ``choices`` by its value; ``what`` names it in the error."""
    try:
        return choices(text)
    except ValueError:
        values = ", ".join(c.value for c in choices)
        raise bad_request(f"Unknown {what} {text!r}; choose one of: {values}.") from None


async def find_account(gw: Gateway, user: str) -> dict[str, Any]:
    """An account by username, else by id: every account stays reachable by
    its name even if another's id looks like it."""
    from tollway.manage.accounts import list_accounts

    known = await list_accounts(gw)
    for account in known:
        if account["username"] == user:
            return account
    for account in known:
        if user.isascii() and user.isdigit() and account["id"] == int(user):
            return account
    raise not_found(f"No user {user!r} (by username or id); see `tollway user list`.")


# Output.


def table(title: str | None, *columns: str, right: Iterable[str] = ()) -> Table:
    shown = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left")
    aligned = set(right)
    for column in columns:
        shown.add_column(column, justify="right" if column in aligned else "left")
    return shown


def usd(nano_or_text: int | str | None) -> str:
    if nano_or_text is None:
        return "-"
    return nano_or_text if isinstance(nano_or_text, str) else nano_to_usd(nano_or_text)


def mode_label(value: str) -> str:
    """A mode's wire value with its display name: 'pay_per_call (Pay-per-Call)'."""
    try:
        return f"{value} ({MODE_INFO[BillingMode(value)].name})"
    except ValueError:
        return value


def when(iso_text: str | None) -> str:
    """An ISO time from the services, shortened for a table."""
    if iso_text is None:
        return "-"
    return iso_text.replace("T", " ").split(".")[0].removesuffix("Z")


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
