"""`tollway group ...`, `tollway user set-groups` and `tollway token create
--group` / `set-group` through typer's CliRunner, on a fresh SQLite database
per test."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from test_cli import cli, failed, new_user, row, rows, with_gateway

from tollway.gateway import Gateway
from tollway.manage.tokens import get_token


@pytest.fixture(autouse=True)
def fresh_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TOLLWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("TOLLWAY_ADMIN_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # tables one line per row, whatever the terminal


def test_group_add_list_edit() -> None:
    added = cli("group", "add", "vip", "--multiplier", "0.80", "--description", "resellers")
    assert row(added.stdout, "vip")[1:4] == ["0.8", "-", "resellers"]
    cli("group", "add", "cheap", "--multiplier", "0.5", "--auto-rank", "1")
    listed = [cells[:3] for cells in rows(cli("group", "list").stdout)]
    assert listed == [["default", "1", "-"], ["cheap", "0.5", "1"], ["vip", "0.8", "-"]]
    edited = cli("group", "edit", "vip", "--multiplier", "0.75", "--auto-rank", "2").stdout
    assert row(edited, "vip")[1:3] == ["0.75", "2"]
    assert row(cli("group", "edit", "cheap", "--no-auto").stdout, "cheap")[2] == "-"
    groups = with_gateway(_groups)
    assert groups["vip"] == Fraction(3, 4) and groups["cheap"] == Fraction(1, 2)


async def _groups(gw: Gateway) -> dict[str, Fraction]:
    return {name: g.multiplier for name, g in gw.state.groups.items()}


def test_group_bad_input_fails_cleanly() -> None:
    assert "'multiplier' must be a decimal" in failed("group", "add", "x", "--multiplier", "0")
    assert "'multiplier' must be a decimal" in failed("group", "add", "x", "--multiplier", "1e3")
    assert "reserved" in failed("group", "add", "auto", "--multiplier", "1")
    cli("group", "add", "vip", "--multiplier", "0.8")
    assert "exists" in failed("group", "add", "vip", "--multiplier", "0.9")
    assert "No group 'nope'" in failed("group", "edit", "nope", "--multiplier", "2")
    assert "not both" in failed("group", "edit", "vip", "--auto-rank", "1", "--no-auto")


def test_user_groups_and_token_groups() -> None:
    new_user()
    cli("group", "add", "vip", "--multiplier", "0.8")
    assert "may use the groups default" in failed(
        "token", "create", "--user", "alice", "--name", "t", "--group", "vip"
    )
    assert "Unknown groups: nope" in failed("user", "set-groups", "alice", "nope")
    done = cli("user", "set-groups", "alice", "default", "vip").stdout
    assert "may use the groups: default, vip" in done
    assert "default, vip" in row(cli("user", "list").stdout, "1")  # its groups cell
    cli("token", "create", "--user", "alice", "--name", "t", "--group", "vip")
    assert "vip" in row(cli("token", "list").stdout, "1")  # its group cell
    moved = cli("token", "set-group", "1", "default").stdout
    assert "now priced in group 'default'" in moved
    assert with_gateway(lambda gw: get_token(gw, None, 1))["group"] == "default"
    assert "auto list" in failed("token", "set-group", "1", "auto")
