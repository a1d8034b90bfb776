"""`tollway prices import`: refreshing per-use prices from genai-prices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tollway.cli.catalog import PER_USE_LABELS
from tollway.cli.support import parse_percent, run, stdout, table, usd
from tollway.types import PerUsePrice

if TYPE_CHECKING:
    from tollway.catalog.genai_import import PriceChange
    from tollway.gateway import Gateway

group = typer.Typer(name="prices", help="Model prices.", no_args_is_help=True)


@group.command("import")
def import_prices(
    markup: Annotated[
        str, typer.Option("--markup", help="Percent added to the upstream prices, e.g. 10.")
    ] = "0",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the changes; store nothing.")
    ] = False,
) -> None:
    """Refresh per-use prices from the installed genai-prices package.

    Only models priced from genai-prices are touched (not data/guide.yaml's, curated
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
