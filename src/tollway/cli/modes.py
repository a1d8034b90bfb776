"""`tollway modes`: the billing modes a token can bill by."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from tollway.cli.support import run, stdout, table, yes_no

if TYPE_CHECKING:
    from tollway.gateway import Gateway

# No name: `tollway modes` is a top-level command.
group = typer.Typer()


@group.command("modes")
def modes() -> None:
    """The five billing modes, and how many models each can call now."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        from tollway.manage.models import modes_view

        return modes_view(gw)

    shown = table(
        "Billing modes",
        "value",
        "name",
        "recommended",
        "applicable",
        "models reachable",
        right=("models reachable",),
    )
    for m in run(work):
        shown.add_row(
            m["value"],
            m["name"],
            "★" if m["recommended"] else "",
            yes_no(m["applicable"]),
            str(m["models_reachable"]),
        )
    stdout().print(shown)
