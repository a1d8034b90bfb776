"""`tollway modes`, `tollway models list`, `tollway prices import`: the billing
modes, the catalog with its prices, and refreshing prices from genai-prices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tollway.cli_support import (
    command,
    parse_mode,
    parse_percent,
    run,
    stdout,
    table,
    usd,
    yes_no,
)
from tollway.errors import bad_request
from tollway.types import ModelKind, PerUsePrice

if TYPE_CHECKING:
    from tollway.catalog.genai_import import PriceChange
    from tollway.gateway import Gateway

# How per-use prices are shown: field -> short label.
PER_USE_LABELS = {
    "input_mtok": "in",
    "cached_input_mtok": "cached",
    "output_mtok": "out",
    "image_input_mtok": "img in",
    "image_output_mtok": "img out",
    "audio_input_mtok": "audio in",
    "audio_output_mtok": "audio out",
}


def register_catalog_commands(app: typer.Typer) -> None:
    @command(app, "modes")
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

    models = typer.Typer(help="The model catalog and its prices.", no_args_is_help=True)
    app.add_typer(models, name="models")

    @command(models, "list")
    def list_models(
        mode: Annotated[
            str | None, typer.Option("--mode", help="Show how this mode would bill each model.")
        ] = None,
        kind: Annotated[
            str | None, typer.Option("--kind", help="Only models of this kind.")
        ] = None,
        search: Annotated[
            str | None,
            typer.Option("--search", help="Only models whose id, alias or provider contains this."),
        ] = None,
    ) -> None:
        """The catalog: prices (USD), and with --mode the method each call is billed by."""
        billing_mode = None if mode is None else parse_mode(mode)
        wanted_kind = None if kind is None else _parse_kind(kind)

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

    prices = typer.Typer(help="Model prices.", no_args_is_help=True)
    app.add_typer(prices, name="prices")

    @command(prices, "import")
    def import_prices(
        markup: Annotated[
            str, typer.Option("--markup", help="Percent added to the upstream prices, e.g. 10.")
        ] = "0",
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show the changes; store nothing.")
        ] = False,
    ) -> None:
        """Refresh per-use prices from the installed genai-prices package.

        Only models priced from genai-prices are touched (not the guide's, curated
        ones, or admin edits); the new prices are stored as admin overrides.
        """
        markup_pct = parse_percent(markup, "--markup")

        async def work(gw: Gateway) -> tuple[list[PriceChange], str]:
            from tollway.catalog.genai_import import genai_prices_version, plan_price_refresh
            from tollway.manage.models import store_models

            changes = plan_price_refresh(gw.state.catalog, markup_pct)
            if changes and not dry_run:
                await store_models(gw, [c.model for c in changes])
            return changes, genai_prices_version()

        changes, version = run(work)
        out = stdout()
        origin = f"genai-prices {version}, markup {markup_pct}%"
        if not changes:
            out.print(f"Prices are up to date ({origin}).", highlight=False)
            return
        out.print(_changes_table(changes, origin))
        if dry_run:
            out.print(f"Dry run: {len(changes)} models would change; nothing stored.")
        else:
            out.print(f"Stored new prices of {len(changes)} models as admin overrides.")


def _parse_kind(text: str) -> ModelKind:
    try:
        return ModelKind(text)
    except ValueError:
        kinds = ", ".join(k.value for k in ModelKind)
        raise bad_request(f"Unknown model kind {text!r}; choose one of: {kinds}.") from None


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


def _changes_table(changes: list[PriceChange], origin: str) -> Table:
    shown = table(f"Per-use price changes ({origin}), USD / 1M tokens", "model", "old → new")
    for change in changes:
        shown.add_row(change.model_id, _price_diff(change.old, change.new))
    return shown


def _price_diff(old: PerUsePrice | None, new: PerUsePrice) -> str:
    parts = []
    for field, label in PER_USE_LABELS.items():
        before = None if old is None else getattr(old, field)
        after = getattr(new, field)
        if before != after:
            parts.append(f"{label} {usd(before)} → {usd(after)}")
    return ", ".join(parts)
