"""Rate-limit and budget options the token and user commands share: --rpm,
--tpm, --concurrent (a whole number, or "none" to lift it), a budget's amount
and --per period, and how they read in a table."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tollway.cli.support import fail, parse_usd

NONE_WORD = "none"
Rpm = Annotated[
    str | None, typer.Option("--rpm", help='Requests a minute (a whole number, or "none").')
]
Tpm = Annotated[
    str | None,
    typer.Option("--tpm", help='Tokens a minute, counted at max_tokens up front (or "none").'),
]
Concurrent = Annotated[
    str | None, typer.Option("--concurrent", help='Calls at once (a whole number, or "none").')
]


def limit_changes(
    rpm: str | None, tpm: str | None, concurrent: str | None, required: bool = False
) -> dict[str, Any]:
    """The limits the options give (an option left out: unchanged); with
    ``required``, at least one must be given."""
    changes: dict[str, Any] = {}
    for field, flag, raw in (
        ("rpm_limit", "--rpm", rpm),
        ("tpm_limit", "--tpm", tpm),
        ("max_concurrent", "--concurrent", concurrent),
    ):
        if raw is None:
            continue
        if raw.strip().lower() == NONE_WORD:
            changes[field] = None
        elif raw.strip().isdigit():
            changes[field] = int(raw.strip())  # its range: the service's check
        else:
            fail(f'{flag} must be a whole number or "none", got {raw!r}.')
    if required and not changes:
        fail("Give at least one of --rpm, --tpm, --concurrent.")
    return changes


def limits_text(row: dict[str, Any]) -> str:
    """``60 rpm, 90000 tpm, 4 at once``, or ``none``."""
    parts = []
    for field, unit in (("rpm_limit", "rpm"), ("tpm_limit", "tpm"), ("max_concurrent", "at once")):
        if row.get(field) is not None:
            parts.append(f"{row[field]} {unit}")
    return ", ".join(parts) or NONE_WORD


Per = Annotated[str, typer.Option("--per", help="The budget's period: day, week or month (UTC).")]


def budget_changes(amount: str, per: str) -> dict[str, Any]:
    """A budget of ``amount`` USD per ``per`` period ("none" lifts it)."""
    if amount.strip().lower() == NONE_WORD:
        return {"budget_nano": None}
    return {"budget_nano": parse_usd(amount, "AMOUNT_USD"), "budget_period": per.strip().lower()}


def budget_text(row: dict[str, Any]) -> str:
    """``5.00 USD a day, 1.25 used`` or ``none``."""
    if row.get("budget_usd") is None:
        return NONE_WORD
    return f"{row['budget_usd']} USD a {row['budget_period']}, {row['budget_used_usd']} used"
