"""`tollway token|user set-limits`, `set-budget` and `tollway audit`."""

from __future__ import annotations

from test_cli import cli, failed, fresh_database, new_user, with_gateway

from tollway.gateway import Gateway
from tollway.manage.accounts import account_view
from tollway.manage.tokens import get_token

__all__ = ["fresh_database"]  # the CLI tests' fixture: a new SQLite database per test


def test_token_limits_and_budget() -> None:
    new_user()
    cli("token", "create", "--user", "alice", "--name", "t", "--rpm", "60", "--tpm", "90000")
    done = cli("token", "set-limits", "1", "--concurrent", "4", "--rpm", "none").stdout
    assert "limited to: 90000 tpm, 4 at once" in done
    done = cli("token", "set-budget", "1", "5.00", "--per", "day").stdout
    assert "budget: 5 USD a day, 0 used" in done

    async def read(gw: Gateway) -> dict[str, object]:
        return await get_token(gw, None, 1)

    token = with_gateway(read)
    assert (token["rpm_limit"], token["tpm_limit"], token["max_concurrent"]) == (None, 90000, 4)
    assert (token["budget_usd"], token["budget_period"]) == ("5", "day")
    assert "budget: none" in cli("token", "set-budget", "1", "none").stdout
    assert "Give at least one of" in failed("token", "set-limits", "1")
    assert "whole number" in failed("token", "set-limits", "1", "--rpm", "many")
    assert "rpm_limit" in failed("token", "set-limits", "1", "--rpm", "0")
    assert "budget_period" in failed("token", "set-budget", "1", "5", "--per", "year")


def test_user_limits_budget_and_the_audit_log() -> None:
    new_user()
    assert "limited to: 600 rpm" in cli("user", "set-limits", "alice", "--rpm", "600").stdout
    assert "budget: 100 USD a month" in cli("user", "set-budget", "alice", "100").stdout

    async def read(gw: Gateway) -> dict[str, object]:
        return await account_view(gw, 1)

    account = with_gateway(read)
    assert (account["rpm_limit"], account["budget_usd"]) == (600, "100")
    logged = cli("audit", "--action", "account.").stdout
    assert "account.limits" in logged and "cli" in logged


def test_webhooks_from_the_command_line() -> None:
    new_user()
    added = cli(
        "webhook", "add", "--user", "alice", "--url", "https://hooks.example/t",
        "--threshold", "80", "--low-balance", "2.50",
    ).stdout  # fmt: skip
    assert "whsec_" in added
    listed = cli("webhook", "list", "--user", "alice").stdout
    assert "https://hooks.example/t" in listed and "80 %" in listed and "2.5" in listed
    assert "Events" in cli("webhook", "events", "1").stdout
    assert "'url'" in failed("webhook", "add", "--user", "alice", "--url", "ftp://x")
    assert "No webhook 9" in failed("webhook", "events", "9")
