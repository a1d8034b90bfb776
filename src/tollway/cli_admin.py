"""Operator commands: accounts, tokens, billing modes, models and prices,
usage, channels. They act on the database directly, through the same services
as the management API; a running server picks the changes up within its
state poll interval."""

from __future__ import annotations

import typer

from tollway.cli_accounts import user_commands
from tollway.cli_catalog import register_catalog_commands
from tollway.cli_channels import channel_commands
from tollway.cli_tokens import token_commands
from tollway.cli_usage import register_usage_commands


def register_admin_commands(app: typer.Typer) -> None:
    app.add_typer(user_commands(), name="user")
    app.add_typer(token_commands(), name="token")
    register_catalog_commands(app)
    register_usage_commands(app)
    app.add_typer(channel_commands(), name="channel")
