"""`tollway channel ...`: the upstreams calls are forwarded to (docs/routing.md).

Every command goes through the same services as /api/channels
(``tollway.manage.channels``, ``tollway.manage.channel_test``); keys are
shown as hints only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tollway.cli.support import run, stdout, table, when
from tollway.errors import bad_request

if TYPE_CHECKING:
    from tollway.gateway import Gateway

ChannelId = Annotated[int, typer.Argument(help="The channel's id (see `tollway channel list`).")]

# The options `add` and `edit` share (each None when not given).
Name = Annotated[str | None, typer.Option("--name", help="A name to tell it by.")]
Type = Annotated[
    str | None, typer.Option("--type", help="Upstream API: openai (any compatible), anthropic…")
]
BaseUrl = Annotated[
    str | None, typer.Option("--base-url", help="The upstream's API root, e.g. https://host/v1.")
]
ApiKeys = Annotated[
    list[str] | None, typer.Option("--api-key", help="An upstream key (repeat for more).")
]
KeyStrategy = Annotated[
    str | None, typer.Option("--key-strategy", help="round_robin or random, among its keys.")
]
Models = Annotated[
    list[str] | None, typer.Option("--model", help="Serve this catalog model ('*': all; repeat).")
]
Mapping = Annotated[
    list[str] | None,
    typer.Option("--map", help="catalog-id=upstream-name: the model's name upstream (repeat)."),
]
Priority = Annotated[int | None, typer.Option("--priority", help="Higher is tried first.")]
Weight = Annotated[
    int | None, typer.Option("--weight", help="Share of the calls within its priority.")
]
Groups = Annotated[
    list[str] | None, typer.Option("--group", help="Serve this price group's tokens (repeat).")
]
Methods = Annotated[
    list[str] | None, typer.Option("--method", help="per_use or per_call (repeat for both).")
]
CostMultiplier = Annotated[
    str | None,
    typer.Option("--cost-multiplier", help="What the upstream charges, times catalog prices."),
]

group = typer.Typer(
    name="channel",
    help="Upstream channels: add, list, show, edit, enable, disable, test, delete, rekey.",
    no_args_is_help=True,
)


@group.command("add")
def add(
    name: Annotated[str, typer.Option("--name", help="A name to tell it by.")],
    base_url: Annotated[
        str, typer.Option("--base-url", help="The upstream's API root, e.g. https://host/v1.")
    ],
    api_keys: ApiKeys = None,
    type_: Type = "openai",
    key_strategy: KeyStrategy = None,
    models: Models = None,
    mapping: Mapping = None,
    priority: Priority = None,
    weight: Weight = None,
    groups: Groups = None,
    methods: Methods = None,
    cost_multiplier: CostMultiplier = None,
) -> None:
    """Add an upstream channel (the key is asked for if not given); it serves the next call."""
    if not api_keys:
        api_keys = [typer.prompt("Upstream API key", hide_input=True)]
    fields = _fields(
        name=name,
        type=type_,
        base_url=base_url,
        api_keys=api_keys,
        key_strategy=key_strategy,
        models=models or ["*"],
        model_mapping=_mapping(mapping),
        priority=priority,
        weight=weight,
        groups=groups,
        methods=methods,
        cost=_cost(cost_multiplier),
    )

    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage.channels import create_channel

        return await create_channel(gw, fields)

    channel = run(work)
    stdout().print(f"Channel {channel['id']} ({channel['name']!r}) added.", highlight=False)
    stdout().print(_channels_table([channel], "Channel"))


@group.command("list")
def list_channels() -> None:
    """Every channel: status, order, what it serves, its keys (as hints), last error."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        from tollway.manage.channels import list_channels

        return await list_channels(gw)

    stdout().print(_channels_table(run(work), "Channels"))


@group.command("show")
def show(channel_id: ChannelId) -> None:
    """One channel in full, with its keys' status and this process's health view."""
    stdout().print(_details(_get(channel_id)))


@group.command("edit")
def edit(
    channel_id: ChannelId,
    name: Name = None,
    type_: Type = None,
    base_url: BaseUrl = None,
    api_keys: Annotated[
        list[str] | None,
        typer.Option("--api-key", help="Replace the keys with these (repeat for more)."),
    ] = None,
    key_strategy: KeyStrategy = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", help="Replace the models with these ('*': all; repeat)."),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="Replace the mapping: catalog-id=upstream-name (repeat)."),
    ] = None,
    clear_map: Annotated[bool, typer.Option("--clear-map", help="Remove the mapping.")] = False,
    priority: Priority = None,
    weight: Weight = None,
    groups: Groups = None,
    methods: Methods = None,
    cost_multiplier: CostMultiplier = None,
    clear_cost: Annotated[
        bool, typer.Option("--clear-cost", help="Forget what the upstream charges.")
    ] = False,
) -> None:
    """Change a channel: only the options given change; the next call sees it."""
    if mapping and clear_map:
        raise bad_request("Give --map or --clear-map, not both.")
    if cost_multiplier is not None and clear_cost:
        raise bad_request("Give --cost-multiplier or --clear-cost, not both.")
    fields = _fields(
        name=name,
        type=type_,
        base_url=base_url,
        api_keys=api_keys,
        key_strategy=key_strategy,
        models=models,
        model_mapping={} if clear_map else _mapping(mapping),
        priority=priority,
        weight=weight,
        groups=groups,
        methods=methods,
        cost=_cost(cost_multiplier),
    )
    if clear_cost:
        fields["cost"] = None
    if not fields:
        raise bad_request("Nothing to change: give at least one option (see --help).")
    channel = _update(channel_id, fields)
    stdout().print(f"Channel {channel_id} ({channel['name']!r}) saved.", highlight=False)
    stdout().print(_details(channel))


@group.command("enable")
def enable(channel_id: ChannelId) -> None:
    """Enable a channel (and its keys, if the upstream had rejected them all)."""
    channel = _update(channel_id, {"enabled": True})
    stdout().print(f"Channel {channel_id} ({channel['name']!r}) is enabled.", highlight=False)


@group.command("disable")
def disable(channel_id: ChannelId) -> None:
    """Stop routing calls to a channel (until enabled again)."""
    channel = _update(channel_id, {"enabled": False})
    stdout().print(f"Channel {channel_id} ({channel['name']!r}) is disabled.", highlight=False)


@group.command("test")
def test(
    channel_id: ChannelId,
    model: Annotated[
        str | None,
        typer.Option("--model", help="A chat or embedding model (default: one it serves)."),
    ] = None,
) -> None:
    """One small call to the channel's upstream with each key until one passes.
    Exits 1 when the test fails; a pass enables an auto-disabled channel again."""
    fields = {} if model is None else {"model": model}

    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage.channel_test import test_channel

        return await test_channel(gw, channel_id, fields)

    result = run(work)
    out = stdout()
    status = result["status_code"] if result["status_code"] is not None else "no answer"
    verdict = "ok" if result["ok"] else "FAILED"
    out.print(
        f"Channel {channel_id}: {verdict} (model {result['model']}, status {status}, "
        f"{result['latency_ms']} ms)",
        highlight=False,
    )
    if result.get("error"):
        out.print(f"error: {result['error']}", highlight=False, soft_wrap=True)
    if result.get("enabled_again"):
        out.print("The channel and its keys are enabled again.")
    if not result["ok"]:
        raise typer.Exit(1)


@group.command("delete")
def delete(channel_id: ChannelId) -> None:
    """Delete a channel; calls stop going to it at once."""

    async def work(gw: Gateway) -> None:
        from tollway.manage.channels import delete_channel

        await delete_channel(gw, channel_id)

    run(work)
    stdout().print(f"Channel {channel_id} is deleted.", highlight=False)


@group.command("rekey")
def rekey() -> None:
    """Encrypt every channel key again with the current TOLLWAY_SECRET_KEY (after
    a rotation: docs/security.md)."""

    async def work(gw: Gateway) -> tuple[int, int]:
        from tollway.key_vault import SecretKeyError, rekey, vault_of

        try:
            return await rekey(gw.engine, vault_of(gw.settings))
        except SecretKeyError as exc:
            raise bad_request(str(exc)) from None

    rewritten, unreadable = run(work)
    stdout().print(f"{rewritten} channel keys encrypted with the current secret.", highlight=False)
    if unreadable:
        typer.echo(
            f"tollway: {unreadable} channel keys cannot be decrypted with TOLLWAY_SECRET_KEY "
            "or TOLLWAY_SECRET_KEY_PREVIOUS; they were left as they are (set the secret "
            "they were written with in TOLLWAY_SECRET_KEY_PREVIOUS, or enter them again)",
            err=True,
        )
        raise typer.Exit(1)


def _fields(**given: Any) -> dict[str, Any]:
    """The service's fields: those given (None: not given)."""
    return {name: value for name, value in given.items() if value is not None}


def _mapping(pairs: list[str] | None) -> dict[str, str] | None:
    """``--map catalog-id=upstream-name`` options as the service's mapping."""
    if not pairs:
        return None
    mapping: dict[str, str] = {}
    for pair in pairs:
        model, sep, upstream = pair.partition("=")
        if not sep or not model.strip() or not upstream.strip():
            raise bad_request(f"--map takes catalog-id=upstream-name, not {pair[:100]!r}.")
        mapping[model.strip()] = upstream.strip()
    return mapping


def _cost(multiplier: str | None) -> dict[str, str] | None:
    return None if multiplier is None else {"multiplier": multiplier}


def _get(channel_id: int) -> dict[str, Any]:
    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage.channels import get_channel

        return await get_channel(gw, channel_id)

    return run(work)


def _update(channel_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    async def work(gw: Gateway) -> dict[str, Any]:
        from tollway.manage.channels import update_channel

        return await update_channel(gw, channel_id, fields)

    return run(work)


def _channels_table(found: list[dict[str, Any]], title: str) -> Table:
    shown = table(
        title,
        "id",
        "name",
        "type",
        "status",
        "priority/weight",
        "models",
        "groups",
        "methods",
        "keys",
        "last error",
        right=("id", "priority/weight"),
    )
    for c in found:
        shown.add_row(
            str(c["id"]),
            c["name"],
            c["type"],
            _status(c),
            f"{c['priority']}/{c['weight']}",
            ", ".join(c["models"]),
            ", ".join(c["groups"]),
            ", ".join(c["methods"]),
            _keys(c["keys"]),
            _last_error(c),
        )
    return shown


def _status(channel: dict[str, Any]) -> str:
    reason = channel["status_reason"]
    return channel["status"] + (f" ({reason})" if reason else "")


def _keys(keys: list[dict[str, Any]]) -> str:
    enabled = sum(1 for k in keys if k["enabled"])
    return ", ".join(k["hint"] for k in keys) + f" ({enabled}/{len(keys)} enabled)"


def _last_error(channel: dict[str, Any]) -> str:
    if not channel["last_error"]:
        return "-"
    return f"{channel['last_error']} ({when(channel['last_error_at'])})"


def _details(c: dict[str, Any]) -> Table:
    shown = table(f"Channel {c['id']}", "field", "value")
    health = c["health"]
    cost = c["cost"]
    rows = [
        ("name", c["name"]),
        ("type", c["type"]),
        ("base url", c["base_url"]),
        ("status", _status(c)),
        ("priority / weight", f"{c['priority']} / {c['weight']}"),
        ("models", ", ".join(c["models"])),
        ("model mapping", ", ".join(f"{k}={v}" for k, v in c["model_mapping"].items()) or "-"),
        ("groups", ", ".join(c["groups"])),
        ("methods", ", ".join(c["methods"])),
        ("key strategy", c["key_strategy"]),
        *(
            (f"key {k['hint']}", "enabled" if k["enabled"] else f"disabled ({k['reason']})")
            for k in c["keys"]
        ),
        ("cost", _cost_text(cost)),
        ("last error", _last_error(c)),
        ("recent calls (1 min)", str(health["recent_calls"])),
        ("error rate", f"{health['error_rate']:.1%}"),
        ("p50 latency ms", _or_dash(health["latency_p50_ms"])),
        ("breaker", health["breaker"]),
        ("cooling until (UTC)", when(health["cooling_until"])),
        ("created (UTC)", when(c["created_at"])),
        ("updated (UTC)", when(c["updated_at"])),
    ]
    for name, value in rows:
        shown.add_row(name, value)
    return shown


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _cost_text(cost: dict[str, Any] | None) -> str:
    if cost is None:
        return "-"
    if "multiplier" in cost:
        return f"x{cost['multiplier']} of catalog prices"
    return f"own prices for {', '.join(cost['prices'])}"
