"""The web console reaches data only through tollway.manage: no module in
tollway.web imports the database, the ledger, the live state, the relay or the
providers, or reads the gateway's engine, ledger or catalog itself.

Read from the source with ``ast`` (nothing is imported), so a lazy import
inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tollway.web

WEB = Path(tollway.web.__file__).parent
# Modules (and their submodules) the console must leave to tollway.manage.
FORBIDDEN = (
    "sqlalchemy",
    "tollway.db",
    "tollway.ledger",
    "tollway.state",
    "tollway.relay",
    "tollway.providers",
    "tollway.billing.pricing",
)
# The gateway's internals: what manage/ functions are handed the gateway for.
GATEWAY_INTERNALS = frozenset({"engine", "ledger", "catalog", "spending_lowered"})


def web_modules() -> list[Path]:
    return sorted(WEB.rglob("*.py"))


def imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_forbidden(name: str) -> bool:
    return any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN)


@pytest.mark.parametrize("path", web_modules(), ids=lambda p: p.name)
def test_web_imports_no_data_layer(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    assert [name for name in imported(tree) if is_forbidden(name)] == []


@pytest.mark.parametrize("path", web_modules(), ids=lambda p: p.name)
def test_web_reads_no_gateway_internals(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    reached = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in GATEWAY_INTERNALS
    ]
    assert reached == []


def test_the_checks_see_what_they_forbid() -> None:
    tree = ast.parse(
        "import sqlalchemy\n"
        "from tollway.db import schema\n"
        "from tollway import ledger\n"
        "def f():\n    from tollway.relay.pipeline import x\n"
    )
    assert [n for n in imported(tree) if is_forbidden(n)] == [
        "sqlalchemy",
        "tollway.db",
        "tollway.db.schema",
        "tollway.ledger",
        "tollway.relay.pipeline",
        "tollway.relay.pipeline.x",
    ]
    assert not is_forbidden("tollway.ledgers") and not is_forbidden("tollway.manage.usage")
    assert web_modules(), "found no web modules to check"
