"""`tollway channel ...`: the upstreams calls are forwarded to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tollway.cli.support import run, stdout, table, when

if TYPE_CHECKING:
    from tollway.gateway import Gateway


group = typer.Typer(
    name="channel", help="Upstream channels: add, list, delete.", no_args_is_help=True
)


@group.command("add")
def add(
    name: Annotated[str, typer.Option("--name", help="A name to tell it by.")],
    base_url: Annotated[
        str, typer.Option("--base-url", help="The upstream's API root, e.g. https://host/v1.")
    ],
    api_key: Annotated[
        str,
        typer.Option(
            "--api-key", prompt="Upstream API key", hide_input=True, help="Asked if not given."
        ),
    ],
    type_: Annotated[
        str, typer.Option("--type", help="Upstream API family; openai: any compatible one.")
    ] = "openai",
    models: Annotated[
        list[str] | None,
        typer.Option("--model", help="Serve this model (repeat for more; default: all)."),
    ] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher is tried first.")] = 0,
) -> None:
    """Add an upstream channel; it serves calls from the next one on."""
    fields = {
        "name": name,
        "type": type_,
        "base_url": base_url,
        "api_key": api_key,
        "models": models or ["*"],
        "priority": priority,
    }

    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage.channels import create_channel

        return await create_channel(gw, fields)

    stdout().print(_channels_table([run(work)], "Channel added"))


@group.command("list")
def list_channels() -> None:
    """Every channel (API keys masked)."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        from tollway.manage import channels as service

        return await service.list_channels(gw)

    stdout().print(_channels_table(run(work), "Channels"))


@group.command("delete")
def delete(channel_id: Annotated[int, typer.Argument(help="The channel's id.")]) -> None:
    """Delete a channel; calls stop going to it at once."""

    async def work(gw: Gateway) -> None:
        from tollway.manage.channels import delete_channel

        await delete_channel(gw, channel_id)

    run(work)
    stdout().print(f"Channel {channel_id} is deleted.", highlight=False)


def _channels_table(found: list[dict[str, Any]], title: str) -> Table:
    shown = table(
        title,
        "id",
        "name",
        "type",
        "base url",
        "keys",
        "models",
        "priority",
        "status",
        "created (UTC)",
        right=("id", "priority"),
    )
    for c in found:
        shown.add_row(
            str(c["id"]),
            c["name"],
            c["type"],
            c["base_url"],
            _keys(c["keys"]),
            ", ".join(c["models"]),
            str(c["priority"]),
            c["status"] + (f" ({c['status_reason']})" if c["status_reason"] else ""),
            when(c["created_at"]),
        )
    return shown


def _keys(keys: list[dict[str, Any]]) -> str:
    enabled = sum(1 for k in keys if k["enabled"])
    return ", ".join(k["hint"] for k in keys) + (f" ({enabled} on)" if enabled < len(keys) else "")
