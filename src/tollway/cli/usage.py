"""`tollway usage`: the usage records calls left, newest first, with a total."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tollway.cli.support import find_account, parse_time, run, stdout, table, when
from tollway.types import nano_to_usd

if TYPE_CHECKING:
    from tollway.gateway import Gateway


# No name: `tollway usage` is a top-level command.
group = typer.Typer()


@group.command("usage")
def usage(
    user: Annotated[
        str | None, typer.Option("--user", help="Only this account's (username or id).")
    ] = None,
    token: Annotated[int | None, typer.Option("--token", help="Only this token's.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only from this ISO 8601 time on.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most this many records.")
    ] = 50,
) -> None:
    """Usage records (what each call was billed), newest first, and their total."""
    since_at = parse_time(since, "--since")

    async def work(gw: Gateway) -> tuple[dict[str, Any], dict[int, str]]:
        from tollway.manage.tokens import list_tokens
        from tollway.manage.usage import list_usage

        account_id = None if user is None else (await find_account(gw, user))["id"]
        page = await list_usage(gw, account_id, token, model, since_at, limit=limit)
        names = {t["id"]: t["name"] for t in await list_tokens(gw, None)}
        return page, names

    from tollway.manage.usage import cost_nano

    page, token_names = run(work)
    records = page["data"]
    total_nano = sum(cost_nano(r) for r in records)
    out = stdout()
    out.print(_usage_table(records, token_names))
    more = " (more are older: raise --limit or narrow --since)" if page["next_cursor"] else ""
    out.print(
        f"Total: {nano_to_usd(total_nano)} USD over {len(records)} "
        f"{'record' if len(records) == 1 else 'records'}{more}",
        highlight=False,
    )


def _usage_table(records: list[dict[str, Any]], token_names: dict[int, str]) -> Table:
    shown = table(
        "Usage",
        "time (UTC)",
        "token",
        "model",
        "mode",
        "method",
        "tokens in",
        "tokens out",
        "items",
        "cost USD",
        "source",
        "status",
        right=("tokens in", "tokens out", "items", "cost USD"),
    )
    for r in records:
        shown.add_row(
            when(r["created_at"]),
            _token_text(r["token_id"], token_names),
            r["model"],
            r["billing_mode"],
            r["method"],
            _tokens_text(r["tokens"], "input_tokens", "image_input_tokens", "audio_input_tokens"),
            _tokens_text(
                r["tokens"], "output_tokens", "image_output_tokens", "audio_output_tokens"
            ),
            str(r["items"]),
            r["cost_usd"],
            r["usage_source"],
            r["status"],
        )
    return shown


def _token_text(token_id: int | None, names: dict[int, str]) -> str:
    if token_id is None:
        return "-"
    name = names.get(token_id)
    return f"{token_id} {name}" if name else f"{token_id} (deleted)"


def _tokens_text(tokens: dict[str, int], text: str, image: str, audio: str) -> str:
    """Text tokens, with image and audio tokens beside them when there are any."""
    shown = str(tokens[text])
    if tokens[image]:
        shown += f" +{tokens[image]} img"
    if tokens[audio]:
        shown += f" +{tokens[audio]} audio"
    return shown
