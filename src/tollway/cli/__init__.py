"""The `tollway` command: serve, simulate, demo, and operator commands.

Each module here is one command group: a module-level ``typer.Typer`` named
``group`` with its commands registered on it by ``@group.command``. A group
with a name (``tollway user ...``) says so in its Typer; one without merges its
commands into the root (``tollway serve``). The root lists them in the order
they are added below.

Operator commands (accounts, tokens, billing modes, models and prices, usage,
channels, price groups) act on the database directly, through the same services as the
management API; a running server picks the changes up within its state poll
interval.
"""

from __future__ import annotations

import typer

from tollway.cli import (
    accounts,
    audit,
    catalog,
    channels,
    groups,
    modes,
    prices,
    run,
    tokens,
    usage,
    webhooks,
)
from tollway.cli.support import FailsCleanly

app = typer.Typer(
    name="tollway",
    help="Tollway: an OpenAI-compatible LLM gateway that bills by the token's billing mode.",
    no_args_is_help=True,
    add_completion=False,
    cls=FailsCleanly,
)
app.add_typer(run.group)
app.add_typer(modes.group)
app.add_typer(usage.group)
app.add_typer(accounts.group)
app.add_typer(tokens.group)
app.add_typer(catalog.group)
app.add_typer(prices.group)
app.add_typer(channels.group)
app.add_typer(groups.group)
app.add_typer(audit.group)
app.add_typer(webhooks.group)


def main() -> None:
    app()
