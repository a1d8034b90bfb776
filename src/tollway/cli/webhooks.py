"""`tollway webhook ...`: an account's alert webhooks and what they were sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tollway.cli.support import find_account, parse_usd, run, stdout, table, when, yes_no

if TYPE_CHECKING:
    from tollway.gateway import Gateway

User = Annotated[str, typer.Option("--user", help="The account: username or id.")]
WebhookId = Annotated[int, typer.Argument(help="The webhook's id (see `tollway webhook list`).")]

group = typer.Typer(
    name="webhook", help="Alert webhooks: budget thresholds and low balance.", no_args_is_help=True
)


@group.command("add")
def add(
    user: User,
    url: Annotated[str, typer.Option("--url", help="Where the events are POSTed.")],
    events: Annotated[
        list[str] | None,
        typer.Option("--event", help="budget.threshold or balance.low (repeat; default: both)."),
    ] = None,
    thresholds: Annotated[
        list[int] | None, typer.Option("--threshold", help="Budget percent (repeat; 50 80 100).")
    ] = None,
    low_balance: Annotated[
        str | None, typer.Option("--low-balance", help="USD: alert when the balance is below.")
    ] = None,
) -> None:
    """Add a webhook; prints its signing secret (shown once)."""
    fields: dict[str, Any] = {"url": url}
    if events:
        fields["events"] = events
    if thresholds:
        fields["thresholds"] = thresholds
    if low_balance is not None:
        fields["low_balance_nano"] = parse_usd(low_balance, "--low-balance")

    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.alerts.webhooks import create_webhook

        account = await find_account(gw, user)
        return await create_webhook(gw, account["id"], fields)

    hook = run(work)
    out = stdout()
    out.print("Signing secret (shown once, store it now):")
    out.print(hook["secret"], soft_wrap=True, highlight=False)
    out.print(_hooks_table([hook]))


@group.command("list")
def list_hooks(user: User) -> None:
    """The account's webhooks."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        from tollway.alerts.webhooks import list_webhooks

        return await list_webhooks(gw, (await find_account(gw, user))["id"])

    stdout().print(_hooks_table(run(work)))


@group.command("events")
def events(webhook_id: WebhookId) -> None:
    """What a webhook was sent, newest first, and how each delivery went."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        from tollway.alerts.webhooks import list_events

        return await list_events(gw, None, webhook_id)

    shown = table("Events", "id", "at (UTC)", "event", "status", "attempts", "last error")
    for e in run(work):
        shown.add_row(
            str(e["id"]), when(e["created_at"]), e["event"], e["status"], str(e["attempts"]),
            e["last_error"] or "",
        )  # fmt: skip
    stdout().print(shown)


def _hooks_table(hooks: list[dict[str, Any]]) -> Any:
    shown = table("Webhooks", "id", "url", "events", "thresholds", "low balance USD", "enabled")
    for h in hooks:
        shown.add_row(
            str(h["id"]), h["url"], ", ".join(h["events"]),
            ", ".join(f"{t} %" for t in h["thresholds"]), h["low_balance_usd"] or "none",
            yes_no(h["enabled"]),
        )  # fmt: skip
    return shown
