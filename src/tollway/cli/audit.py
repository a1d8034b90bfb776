"""`tollway audit`: who changed what, newest first."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tollway.cli.support import run, stdout, table, when

if TYPE_CHECKING:
    from tollway.gateway import Gateway

# No name: `tollway audit` is a top-level command.
group = typer.Typer()


@group.command("audit")
def audit(
    action: Annotated[
        str | None, typer.Option("--action", help="Only actions starting so (account., token.).")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Only this target (account:5, model:gpt-4o).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
) -> None:
    """The audit log: credits, debits, price, channel, group and account changes, and
    tokens edited by admins."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        from tollway.manage.audit import list_audit

        return await list_audit(gw, limit, action, target)

    shown = table("Audit log", "id", "at (UTC)", "who", "action", "target", "what", right=("id",))
    for e in run(work):
        detail = json.dumps(e["detail"], separators=(",", ":")) if e["detail"] else ""
        shown.add_row(
            str(e["id"]), when(e["at"]), e["actor"], e["action"], e["target"], detail[:120]
        )
    stdout().print(shown)
