"""Operator commands (filled in below)."""

from __future__ import annotations

import typer


def register_admin_commands(app: typer.Typer) -> None:
    return None
