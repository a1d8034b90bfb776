"""The operator CLI, run through typer's CliRunner against a fresh SQLite
database per test. The CLI calls asyncio.run itself, so tests are sync."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tollway.app import running_gateway
from tollway.billing.pricing import bill
from tollway.cli import app
from tollway.cli.support import shipped_models
from tollway.gateway import Gateway
from tollway.ledger import UsageRecord
from tollway.manage.models import overridden_ids
from tollway.manage.tokens import get_token
from tollway.settings import Settings
from tollway.types import BillingMethod, Usage

from conftest import free_port

T = TypeVar("T")


@pytest.fixture(autouse=True)
def fresh_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TOLLWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("TOLLWAY_ADMIN_KEY", raising=False)
    monkeypatch.delenv("TOLLWAY_ALLOW_HYBRID", raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # tables one line per row, whatever the terminal


def cli(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def failed(*args: str) -> str:
    """Run a command that must fail cleanly: exit 1, a message on stderr, no traceback."""
    result = cli(*args, ok=False)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" not in result.output
    assert result.stderr.strip()
    return " ".join(result.stderr.split())


def rows(output: str) -> list[list[str]]:
    """The body rows of the (first) table printed, as cells. Cells are two or
    more spaces apart, so an empty cell merges with its neighbours' gap."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("━")) + 1
    body = []
    for line in lines[start:]:
        if not line.strip():
            break
        body.append(re.split(r"\s{2,}", line.strip()))
    return body


def row(output: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is ``first_cell``."""
    for cells in rows(output):
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


def with_gateway(work: Callable[[Gateway], Awaitable[T]]) -> T:
    async def go() -> T:
        async with running_gateway(Settings.from_env(), list(shipped_models())) as gw:
            return await work(gw)

    return asyncio.run(go())


def new_user(name: str = "alice", credit_usd: str | None = None) -> None:
    out = cli("user", "create", name).stdout
    assert re.search(r"^tm-\S+$", out, re.MULTILINE), out
    if credit_usd is not None:
        cli("user", "credit", name, credit_usd, "--reason", "test")


def test_user_create_credit_and_list_show_the_exact_balance() -> None:
    created = cli("user", "create", "alice").stdout
    assert "with id 1" in created
    assert "10.25" in cli("user", "credit", "alice", "10.25", "--reason", "top-up").stdout
    # By id, float-looking and negative amounts: exact decimals, never floats.
    assert "New balance: 10.35 USD" in cli("user", "credit", "1", "0.10", "--reason", "r").stdout
    debit = cli("user", "credit", "alice", "-0.000000001", "--reason", "fix").stdout
    assert "New balance: 10.349999999 USD" in debit
    cells = row(cli("user", "list").stdout, "1")
    assert cells[1:4] == ["alice", "user", "10.349999999"]


def test_user_create_admin_and_taken_name() -> None:
    assert "admin 'root'" in cli("user", "create", "root", "--role", "admin").stdout
    assert "is taken" in failed("user", "create", "root")
    assert "'role' must be one of" in failed("user", "create", "bob", "--role", "owner")


def test_user_create_with_a_password_prompt() -> None:
    short = CliRunner().invoke(
        app, ["user", "create", "bob", "--password-prompt"], "short\nshort\n"
    )
    assert short.exit_code == 1 and "at least 8 characters" in short.stderr
    good = ["user", "create", "bob", "--password-prompt"]
    result = CliRunner().invoke(app, good, "long enough\nlong enough\n")
    assert result.exit_code == 0, result.output
    assert "'bob' with id 1" in result.stdout


def test_credit_bad_input_fails_with_a_clear_message() -> None:
    new_user()
    assert "No user 'nobody'" in failed("user", "credit", "nobody", "5", "--reason", "x")
    assert "not a decimal amount: 'abc'" in failed(
        "user", "credit", "alice", "abc", "--reason", "x"
    )
    assert "more than 9 decimal places" in failed(
        "user", "credit", "alice", "0.0000000001", "--reason", "x"
    )
    assert "needs a reason" in failed("user", "credit", "alice", "5", "--reason", " ")
    assert row(cli("user", "list").stdout, "1")[3] == "0"


def test_token_create_defaults_to_pay_per_use_priority() -> None:
    new_user()
    created = cli("token", "create", "--user", "alice", "--name", "ci", "--quota", "2.5").stdout
    assert re.search(r"^sk-\S+$", created, re.MULTILINE), created
    cells = row(cli("token", "list").stdout, "1")
    assert cells[1:3] == ["alice", "ci"]
    assert cells[4] == "pay_per_use_priority (Pay-per-Use Priority)"
    assert cells[5:7] == ["2.5", "0"]
    token = with_gateway(lambda gw: get_token(gw, None, 1))
    assert token["billing_mode"] == "pay_per_use_priority"
    assert token["quota_usd"] == "2.5"


def test_token_set_mode_enable_disable_delete() -> None:
    new_user()
    cli("token", "create", "--user", "alice", "--name", "ci", "--model", "gpt-4o")
    assert "pay_per_call (Pay-per-Call)" in cli("token", "set-mode", "1", "pay_per_call").stdout
    assert "Unknown billing mode 'bogus'" in failed("token", "set-mode", "1", "bogus")
    cli("token", "disable", "1")
    cells = row(cli("token", "list", "--user", "alice").stdout, "1")
    assert cells[4] == "pay_per_call (Pay-per-Call)"
    assert "gpt-4o" in cells and "no" in cells
    cli("token", "enable", "1")
    assert with_gateway(lambda gw: get_token(gw, None, 1))["enabled"] is True
    cli("token", "delete", "1")
    assert "No token 1" in failed("token", "set-mode", "1", "pay_per_use")
    assert "No token 1" in failed("token", "disable", "1")


def test_hybrid_is_refused_unless_the_operator_allows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new_user()
    message = failed("token", "create", "--user", "alice", "--name", "h", "--mode", "hybrid")
    assert "not applicable" in message and "pay_per_use_priority" in message
    cli("token", "create", "--user", "alice", "--name", "ok")
    assert "not applicable" in failed("token", "set-mode", "1", "hybrid")
    assert "hybrid" not in cli("token", "list").stdout

    monkeypatch.setenv("TOLLWAY_ALLOW_HYBRID", "true")
    cli("token", "create", "--user", "alice", "--name", "h", "--mode", "hybrid")
    assert row(cli("token", "list").stdout, "2")[4] == "hybrid (Hybrid Billing)"
    assert row(cli("modes").stdout, "hybrid")[2] == "yes"


def test_token_create_bad_input() -> None:
    new_user()
    base = ("token", "create", "--user", "alice", "--name", "t")
    assert "No user 'bob'" in failed("token", "create", "--user", "bob", "--name", "t")
    assert "--quota" in failed(*base, "--quota", "lots")
    assert "not an ISO 8601 time" in failed(*base, "--expires", "tomorrow")
    assert "Unknown models in the allowlist: nope" in failed(*base, "--model", "nope")
    expiring = cli(*base, "--expires", "2030-01-02T03:04:05Z").stdout
    assert "2030-01-02 03:04:05" in expiring


def test_modes_lists_all_five_with_the_recommended_one() -> None:
    out = cli("modes").stdout
    assert row(out, "pay_per_use_priority")[1:3] == ["Pay-per-Use Priority", "★"]
    for value in ("pay_per_use", "pay_per_call", "pay_per_call_priority"):
        assert row(out, value)[-2] == "yes"
    assert row(out, "hybrid")[1:3] == ["Hybrid Billing", "no"]


def test_models_list_by_mode_shows_method_or_refusal() -> None:
    out = cli("models", "list", "--mode", "pay_per_call").stdout
    assert row(out, "gpt-4o")[1:] == [
        "multimodal", "openai", "in 5, out 15", "-", "refused: model is per_use only",
    ]  # fmt: skip
    assert row(out, "flux-1.1-pro")[1:] == ["image", "bfl", "-", "0.04", "per_call"]
    priority = cli("models", "list", "--mode", "pay_per_use_priority", "--search", "GPT-4O").stdout
    assert row(priority, "gpt-4o")[-1] == "per_use"
    assert "flux-1.1-pro" not in priority


def test_models_list_filters_and_bad_input() -> None:
    images = cli("models", "list", "--kind", "image").stdout
    assert row(images, "flux-1.1-pro")[1:3] == ["image", "bfl"]
    assert "gpt-4o " not in images
    assert "Unknown model kind 'foo'" in failed("models", "list", "--kind", "foo")
    assert "Unknown billing mode 'x'" in failed("models", "list", "--mode", "x")


def test_usage_lists_records_and_their_total() -> None:
    new_user(credit_usd="10")
    cli("token", "create", "--user", "alice", "--name", "ci")

    async def one_call(gw: Gateway) -> None:
        model = gw.state.catalog.resolve("gpt-4o")
        usage = Usage(input_tokens=12, output_tokens=9)
        cost = bill(model, BillingMethod.PER_USE, usage)
        assert await gw.ledger.hold("req-1", 1, 1, 1_000_000) is None
        record = UsageRecord(
            "req-1", 1, 1, "gpt-4o", "/v1/chat/completions", "pay_per_use_priority",
            "per_use", usage, {"input_mtok": "5", "output_mtok": "15"}, cost.total_nano,
        )  # fmt: skip
        await gw.ledger.settle(record)

    with_gateway(one_call)
    out = cli("usage").stdout
    [cells] = rows(out)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cells[0])
    assert cells[1:] == [
        "1 ci", "gpt-4o", "pay_per_use_priority", "per_use", "12", "9", "1", "0.000195",
        "upstream", "ok",
    ]  # fmt: skip
    assert "Total: 0.000195 USD over 1 record" in out
    assert "0.000195" in cli("usage", "--user", "alice", "--token", "1", "--model", "gpt-4o").stdout
    assert "Total: 0 USD over 0 records" in cli("usage", "--model", "flux-1.1-pro").stdout
    assert "Total: 0 USD over 0 records" in cli("usage", "--since", "2999-01-01").stdout
    assert row(cli("user", "list").stdout, "1")[3] == "9.999805"
    assert "not an ISO 8601 time" in failed("usage", "--since", "yesterday")


def test_prices_import_dry_run_stores_nothing_then_import_stores_overrides() -> None:
    dry = cli("prices", "import", "--markup", "10", "--dry-run").stdout
    assert row(dry, "gpt-4o-mini")[1] == "in 0.15 → 0.165, cached 0.075 → 0.0825, out 0.6 → 0.66"
    assert "gpt-4o" not in [cells[0] for cells in rows(dry)]  # the guide's price stays
    assert "Dry run" in dry and "nothing stored" in dry
    assert with_gateway(overridden_ids) == set()
    assert row(cli("models", "list").stdout, "gpt-4o-mini")[3] == "in 0.15, cached 0.075, out 0.6"

    stored = cli("prices", "import", "--markup", "10%").stdout
    assert "as admin overrides" in stored
    assert "gpt-4o-mini" in with_gateway(overridden_ids)
    listed = row(cli("models", "list", "--search", "gpt-4o-mini").stdout, "gpt-4o-mini")
    assert listed[3] == "in 0.165, cached 0.0825, out 0.66"
    assert row(cli("models", "list").stdout, "gpt-4o")[3] == "in 5, out 15"
    assert "up to date" in cli("prices", "import", "--markup", "10").stdout
    assert "--markup must be a percentage" in failed("prices", "import", "--markup", "-1")


def test_bad_settings_fail_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLWAY_STATE_POLL_MS", "soon")
    assert "TOLLWAY_STATE_POLL_MS must be a whole number" in failed("user", "list")


def test_the_commands_that_run_the_gateway_fail_cleanly_on_bad_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOLLWAY_STATE_POLL_MS", "soon")
    assert "serve" in cli("--help").stdout  # building the command reads no settings
    for command in (["migrate"], ["serve", "--port", str(free_port())]):
        assert "TOLLWAY_STATE_POLL_MS must be a whole number" in failed(*command)
