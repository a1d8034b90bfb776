"""`tollway channel ...` (tollway.cli.channels) through typer's CliRunner, on a
fresh SQLite database per test; `channel test` calls the simulator, served
on loopback from a thread of its own (the CLI runs its own event loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import cli, failed, row, rows, with_gateway

from tollway.gateway import Gateway
from tollway.manage.channels import get_channel
from tollway.routing.status import disable_key
from tollway.simulator import SimulatorConfig, start

SIM_KEY = "sim-key-for-the-cli"


@pytest.fixture(autouse=True)
def fresh_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TOLLWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("TOLLWAY_ADMIN_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "300")  # tables one line per row, whatever the terminal


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    """The simulator (key SIM_KEY) on its own loop in a thread, for the module."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sim = asyncio.run_coroutine_threadsafe(start(SimulatorConfig(api_key=SIM_KEY)), loop).result(10)
    try:
        yield sim.base_url
    finally:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def add(name: str, base_url: str, *keys: str, extra: tuple[str, ...] = ()) -> str:
    key_options = [part for key in keys for part in ("--api-key", key)]
    return cli(
        "channel", "add", "--name", name, "--base-url", base_url, *key_options, *extra
    ).stdout


def details(channel_id: str) -> dict[str, str]:
    """`channel show`'s fields as a dict."""
    return {cells[0]: cells[1] if len(cells) > 1 else "" for cells in rows(
        cli("channel", "show", channel_id).stdout
    )}  # fmt: skip


def test_add_with_every_field_then_list_and_show() -> None:
    added = add(
        "openai-a", "https://up.example/v1", "sk-first-key-1111", "sk-second-key-2222",
        extra=(
            "--key-strategy", "random", "--model", "gpt-4o", "--model", "gpt-4o-mini",
            "--map", "gpt-4o=gpt-4o-2024-08-06", "--priority", "-5", "--weight", "3",
            "--group", "default", "--method", "per_use", "--cost-multiplier", "0.8",
        ),
    )  # fmt: skip
    assert "Channel 1 ('openai-a') added." in added
    listed = cli("channel", "list").stdout
    for shown in (added, listed):
        assert "sk-first" not in shown and "sk-second" not in shown
    assert row(listed, "1")[1:] == [
        "openai-a", "openai", "enabled", "-5/3", "gpt-4o, gpt-4o-mini", "default", "per_use",
        "...1111, ...2222 (2/2 enabled)", "-",
    ]  # fmt: skip
    shown = details("1")
    assert shown["base url"] == "https://up.example/v1"
    assert shown["model mapping"] == "gpt-4o=gpt-4o-2024-08-06"
    assert shown["key strategy"] == "random"
    assert shown["key ...1111"] == shown["key ...2222"] == "enabled"
    assert shown["cost"] == "x0.8 of catalog prices"
    assert shown["recent calls (1 min)"] == "0" and shown["breaker"] == "closed"
    assert shown["cooling until (UTC)"] == "-"


def test_add_defaults_and_asks_for_the_key() -> None:
    from typer.testing import CliRunner

    from tollway.cli import app

    args = ["channel", "add", "--name", "plain", "--base-url", "http://127.0.0.1:9/v1"]
    result = CliRunner().invoke(app, args, "sk-typed-at-the-prompt\n")
    assert result.exit_code == 0, result.output
    assert "sk-typed-at-the-prompt" not in result.stdout
    assert row(cli("channel", "list").stdout, "1")[1:9] == [
        "plain", "openai", "enabled", "0/1", "*", "default", "per_use, per_call",
        "...ompt (1/1 enabled)",
    ]  # fmt: skip
    channel = with_gateway(lambda gw: get_channel(gw, 1))
    assert channel["key_strategy"] == "round_robin" and channel["cost"] is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--base-url", "ftp://x"), "must start with http"),
        (("--type", "nope"), "Unknown channel type 'nope'"),
        (("--map", "gpt-4o"), "--map takes catalog-id=upstream-name"),
        (("--group", "vip"), "Unknown groups: vip"),
        (("--method", "per_token"), "'methods' must be a non-empty list of: per_use, per_call"),
        (("--cost-multiplier", "0"), "more than 0"),
        (("--cost-multiplier", "1e3"), "must be a decimal such as"),
        (("--key-strategy", "first"), "'key_strategy' must be one of: round_robin, random"),
        (("--weight", "-1"), "weight"),
    ],
)
def test_add_refuses_bad_fields_cleanly(options: tuple[str, ...], message: str) -> None:
    base = ("channel", "add", "--name", "x", "--base-url", "http://x/v1", "--api-key", "k")
    assert message in failed(*base, *options)
    assert rows(cli("channel", "list").stdout) == []


def test_add_refuses_the_same_key_twice() -> None:
    base = ("channel", "add", "--name", "x", "--base-url", "http://x/v1")
    assert "lists a key twice" in failed(*base, "--api-key", "k", "--api-key", "k")


def test_edit_changes_only_what_is_given() -> None:
    add("a", "https://up.example/v1", "sk-original-aaaa", extra=(
        "--model", "gpt-4o", "--map", "gpt-4o=up-4o", "--priority", "2",
        "--cost-multiplier", "0.5",
    ))  # fmt: skip
    edited = cli("channel", "edit", "1", "--weight", "7", "--method", "per_call").stdout
    assert "Channel 1 ('a') saved." in edited
    channel = with_gateway(lambda gw: get_channel(gw, 1))
    assert (channel["weight"], channel["methods"], channel["priority"]) == (7, ["per_call"], 2)
    assert channel["model_mapping"] == {"gpt-4o": "up-4o"}
    assert channel["cost"] == {"multiplier": "0.5"}
    assert [k["hint"] for k in channel["keys"]] == ["...aaaa"]

    cli(
        "channel", "edit", "1", "--name", "b", "--api-key", "sk-new-one-bbbb",
        "--api-key", "sk-new-two-cccc", "--clear-map", "--clear-cost", "--model", "*",
        "--group", "default", "--key-strategy", "random", "--type", "openai",
        "--base-url", "http://127.0.0.1:9/v1",
    )  # fmt: skip
    channel = with_gateway(lambda gw: get_channel(gw, 1))
    assert [k["hint"] for k in channel["keys"]] == ["...bbbb", "...cccc"]
    assert channel["name"] == "b" and channel["models"] == ["*"]
    assert channel["model_mapping"] == {} and channel["cost"] is None
    assert channel["key_strategy"] == "random" and channel["base_url"] == "http://127.0.0.1:9/v1"
    cli("channel", "edit", "1", "--map", "gpt-4o=x", "--map", "gpt-4o-mini=y")
    assert with_gateway(lambda gw: get_channel(gw, 1))["model_mapping"] == {
        "gpt-4o": "x",
        "gpt-4o-mini": "y",
    }

    assert "Nothing to change" in failed("channel", "edit", "1")
    assert "not both" in failed("channel", "edit", "1", "--map", "a=b", "--clear-map")
    assert "not both" in failed("channel", "edit", "1", "--cost-multiplier", "1", "--clear-cost")
    assert "Unknown groups: gold" in failed("channel", "edit", "1", "--group", "gold")
    assert "No channel 9" in failed("channel", "edit", "9", "--weight", "1")
    assert with_gateway(lambda gw: get_channel(gw, 1))["groups"] == ["default"]


def test_disable_enable_and_an_auto_disabled_channel() -> None:
    add("two-keys", "https://up.example/v1", "sk-key-one-1111", "sk-key-two-2222")
    assert "is disabled" in cli("channel", "disable", "1").stdout
    cells = row(cli("channel", "list").stdout, "1")
    assert cells[3] == "disabled (disabled by an admin)"
    assert "is enabled" in cli("channel", "enable", "1").stdout
    assert row(cli("channel", "list").stdout, "1")[3] == "enabled"

    async def upstream_rejects_both(gw: Gateway) -> None:
        await disable_key(gw, 1, 0, "Incorrect API key provided")

    with_gateway(upstream_rejects_both)
    cells = row(cli("channel", "list").stdout, "1")
    assert cells[3] == "enabled"  # one key left
    assert cells[8] == "...1111, ...2222 (1/2 enabled)"
    assert "Incorrect API key provided" in cells[9]
    assert details("1")["key ...1111"] == "disabled (Incorrect API key provided)"

    async def and_the_other(gw: Gateway) -> None:
        await disable_key(gw, 1, 1, "invalid_api_key")

    with_gateway(and_the_other)
    cells = row(cli("channel", "list").stdout, "1")
    assert cells[3] == "auto_disabled (invalid_api_key)"
    assert cells[8] == "...1111, ...2222 (0/2 enabled)"
    cli("channel", "enable", "1")  # by hand: its keys are worth a try again
    cells = row(cli("channel", "list").stdout, "1")
    assert cells[3] == "enabled" and cells[8] == "...1111, ...2222 (2/2 enabled)"
    assert "No channel 5" in failed("channel", "enable", "5")


def test_test_passes_on_a_healthy_channel_and_reenables_it(simulator_url: str) -> None:
    add("sim", simulator_url, SIM_KEY, extra=("--model", "gpt-4o-mini"))

    async def rejected(gw: Gateway) -> None:
        await disable_key(gw, 1, 0, "was rejected once")

    with_gateway(rejected)
    assert row(cli("channel", "list").stdout, "1")[3] == "auto_disabled (was rejected once)"
    out = cli("channel", "test", "1").stdout
    assert "Channel 1: ok (model gpt-4o-mini, status 200," in out
    assert "enabled again" in out
    assert row(cli("channel", "list").stdout, "1")[3] == "enabled"
    out = cli("channel", "test", "1", "--model", "gpt-4o").stdout
    assert "ok (model gpt-4o, status 200" in out and "enabled again" not in out
    assert "No model 'nope'" in failed("channel", "test", "1", "--model", "nope")


def test_test_fails_with_exit_1_when_the_upstream_rejects_the_key(simulator_url: str) -> None:
    add("wrong-key", simulator_url, "sk-not-the-simulators")
    result = cli("channel", "test", "1", ok=False)
    assert result.exit_code == 1
    assert "Channel 1: FAILED" in result.stdout and "status 401" in result.stdout
    assert "error: " in result.stdout
    add("nowhere", "http://127.0.0.1:9/v1", "sk-anything-at-all")
    result = cli("channel", "test", "2", ok=False)
    assert result.exit_code == 1 and "status no answer" in result.stdout
    assert "could not be reached" in result.stdout


def test_delete() -> None:
    add("sim", "http://127.0.0.1:9000/v1", "sim-secret-key")
    add("all", "https://up.example/v1", "k")
    assert "Channel 2 is deleted." in cli("channel", "delete", "2").stdout
    assert [cells[1] for cells in rows(cli("channel", "list").stdout)] == ["sim"]
    assert "No channel 2" in failed("channel", "delete", "2")
    assert "No channel 2" in failed("channel", "show", "2")
    assert "No channel 2" in failed("channel", "test", "2")
