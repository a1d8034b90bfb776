"""The `tollway` command: serve, simulate, demo, and operator commands."""

from __future__ import annotations

import typer

from tollway.cli_admin import register_admin_commands
from tollway.cli_run import register_run_commands

app = typer.Typer(
    name="tollway",
    help="Tollway: an OpenAI-compatible LLM gateway that bills by the token's billing mode.",
    no_args_is_help=True,
    add_completion=False,
)
register_run_commands(app)
register_admin_commands(app)


def main() -> None:
    app()
