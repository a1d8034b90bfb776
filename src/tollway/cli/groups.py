"""`tollway group ...`: price groups, each a multiplier on catalog prices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tollway.cli.support import run, stdout, table, when
from tollway.errors import bad_request

if TYPE_CHECKING:
    from tollway.gateway import Gateway

GroupName = Annotated[str, typer.Argument(help="The group's name.")]
Multiplier = Annotated[
    str | None,
    typer.Option("--multiplier", help='x catalog prices, exact (e.g. "0.8"; at most 1000).'),
]
Description = Annotated[str | None, typer.Option("--description", help="What it is for.")]
AutoRank = Annotated[
    int | None,
    typer.Option("--auto-rank", help="Its place in the auto list (lower first)."),
]

group = typer.Typer(
    name="group",
    help="Price groups: add, list, edit (a token pays catalog prices x its group's multiplier).",
    no_args_is_help=True,
)


@group.command("add")
def add(
    name: GroupName,
    multiplier: Annotated[
        str, typer.Option("--multiplier", help='x catalog prices, exact (e.g. "0.8").')
    ],
    description: Description = None,
    auto_rank: AutoRank = None,
) -> None:
    """Add a price group; give accounts it with `tollway user set-groups`."""
    fields: dict[str, Any] = {"name": name, "multiplier": multiplier}
    if description is not None:
        fields["description"] = description
    if auto_rank is not None:
        fields["auto_rank"] = auto_rank

    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage.groups import create_group

        return await create_group(gw, fields)

    stdout().print(groups_table([run(work)], "Group added"))


@group.command("list")
def list_groups() -> None:
    """Every price group: default first, then the auto list in its order."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        from tollway.manage.groups import list_groups

        return await list_groups(gw)

    stdout().print(groups_table(run(work), "Groups"))


@group.command("edit")
def edit(
    name: GroupName,
    multiplier: Multiplier = None,
    description: Description = None,
    auto_rank: AutoRank = None,
    no_auto: Annotated[
        bool, typer.Option("--no-auto", help="Take it out of the auto list.")
    ] = False,
) -> None:
    """Change a group's multiplier, description or place in the auto list;
    it applies from the next call."""
    if no_auto and auto_rank is not None:
        raise bad_request("Give --auto-rank or --no-auto, not both.")
    fields: dict[str, Any] = {}
    if multiplier is not None:
        fields["multiplier"] = multiplier
    if description is not None:
        fields["description"] = description
    if auto_rank is not None:
        fields["auto_rank"] = auto_rank
    if no_auto:
        fields["auto_rank"] = None

    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage.groups import update_group

        return await update_group(gw, name, fields)

    stdout().print(groups_table([run(work)], "Group"))


def groups_table(found: list[dict[str, Any]], title: str) -> Table:
    shown = table(
        title,
        "name",
        "multiplier",
        "auto rank",
        "description",
        "created (UTC)",
        right=("multiplier", "auto rank"),
    )
    for g in found:
        shown.add_row(
            g["name"],
            g["multiplier"],
            "-" if g["auto_rank"] is None else str(g["auto_rank"]),
            g["description"] or "",
            when(g["created_at"]),
        )
    return shown
