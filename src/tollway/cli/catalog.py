"""`tollway models list`: the model catalog with its prices, and how a billing
mode would bill each model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tollway.cli.support import parse_choice, run, stdout, table
from tollway.types import BillingMode, ModelKind

if TYPE_CHECKING:
    from tollway.gateway import Gateway

# How per-use prices are shown: field -> short label.
PER_USE_LABELS = {
    "input_mtok": "in",
    "cached_input_mtok": "cached",
    "cache_write_mtok": "cache write",
    "cache_write_1h_mtok": "cache write 1h",
    "output_mtok": "out",
    "image_input_mtok": "img in",
    "image_output_mtok": "img out",
    "audio_input_mtok": "audio in",
    "audio_output_mtok": "audio out",
    "input_mchar": "per 1M chars",
    "audio_input_minute": "per audio minute",
}

group = typer.Typer(name="models", help="The model catalog and its prices.", no_args_is_help=True)


@group.command("list")
def list_models(
    mode: Annotated[
        str | None, typer.Option("--mode", help="Show how this mode would bill each model.")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only models of this kind.")] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", help="Only models whose id, alias or provider contains this."),
    ] = None,
) -> None:
    """The catalog: prices (USD), and with --mode the method each call is billed by."""
    billing_mode = None if mode is None else parse_choice(BillingMode, mode, "billing mode")
    wanted_kind = None if kind is None else parse_choice(ModelKind, kind, "model kind")

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        from tollway.manage.models import model_view

        return [
            model_view(m, billing_mode, gw.settings.allow_hybrid)
            for m in gw.state.catalog.models
            if (wanted_kind is None or m.kind is wanted_kind)
            and (search is None or _matches(search, m.id, m.provider, *m.aliases))
        ]

    found = run(work)
    stdout().print(_models_table(found, with_billing=billing_mode is not None))
    stdout().print(f"{len(found)} models", highlight=False)


def _matches(needle: str, *names: str) -> bool:
    folded = needle.casefold()
    return any(folded in name.casefold() for name in names)


def _models_table(found: list[dict[str, Any]], with_billing: bool) -> Table:
    columns = ["id", "kind", "provider", "per use (USD / 1M tokens)", "per call (USD)"]
    shown = table("Models", *columns, *(["billed by"] if with_billing else []))
    for view in found:
        row = [
            view["id"],
            view["kind"],
            view["provider"],
            _per_use_text(view["per_use"]),
            view["per_call"]["price"] if view["per_call"] else "-",
        ]
        if with_billing:
            row.append(_billing_text(view))
        shown.add_row(*row)
    return shown


def _per_use_text(prices: dict[str, str] | None) -> str:
    if not prices:
        return "-"
    return ", ".join(f"{label} {prices[k]}" for k, label in PER_USE_LABELS.items() if k in prices)


def _billing_text(view: dict[str, Any]) -> str:
    billing = view["billing"]
    if billing["method"] is not None:
        return str(billing["method"])
    return f"refused: model is {' and '.join(view['methods']) or 'not priced'} only"
