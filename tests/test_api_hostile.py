"""Issue 12's hostile run, one regression test per finding: /api, the console
and the CLI answer bad input with a clear 4xx (JSON for /api, a page for the
console, one line for the CLI) and change nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from test_web import Browser, new_user
from typer.testing import CliRunner

from tollway.cli import app as cli_app
from tollway.types import Model

from conftest import Served, customer, serve, test_settings

Json = dict[str, Any]
CHANNEL = {"name": "c", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k",
           "models": ["*"]}  # fmt: skip
HELLO_CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}


def assert_error(got: httpx.Response, status: int, code: str | None = None) -> Json:
    assert got.status_code == status, got.text[:500]
    assert got.headers["content-type"].startswith("application/json"), got.text[:500]
    error: Json = got.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code, error
    return error


async def credit(served: Served, account_id: int, body: str) -> httpx.Response:
    return await served.admin.post(
        f"/api/users/{account_id}/credit",
        content=body,
        headers={"content-type": "application/json"},
    )


# --- defect 2: a large credit corrupts an account -----------------------------------


async def test_a_credit_past_64_bits_is_a_400_and_the_account_stays_whole(
    served: Served,
) -> None:
    account = await served.new_account("0")
    huge = '{"amount_usd": "9223372036.854775807", "reason": "x"}'
    got = await credit(served, account["id"], huge)
    assert_error(got, 400)
    assert await served.balance_usd(account["management_key"]) == "0"
    # Up to the maximum balance, and not one nano-USD past it.
    got = await credit(served, account["id"], '{"amount_usd": "1000000000", "reason": "most"}')
    assert got.status_code == 200, got.text
    assert got.json()["balance_usd"] == "1000000000"
    got = await credit(served, account["id"], '{"amount_usd": "0.000000001", "reason": "past"}')
    assert "maximum" in assert_error(got, 400)["message"]
    assert await served.balance_usd(account["management_key"]) == "1000000000"
    for path in ("/api/users", f"/api/users/{account['id']}"):
        assert (await served.admin.get(path)).status_code == 200
    got = await credit(served, account["id"], '{"amount_usd": "-1000000000", "reason": "back"}')
    assert got.status_code == 200 and got.json()["balance_usd"] == "0"


# --- defect 8: the money parser's quirks ---------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        '"1_000"',
        '"٣"',
        '" 1"',
        '"1 0"',
        '"NaN"',
        '"Infinity"',
        '"1e3"',
        '"+1"',
        '".5"',
        '"0.0000000001"',
        "1e30",
        "1e309",
        "-1e309",
        '"1e30"',
        "0.0000000001",
        "true",
        "[1]",
        "null",
    ],
)
async def test_credit_amounts_are_plain_decimals_within_the_maximum(
    served: Served, amount: str
) -> None:
    account = await served.new_account("1")
    got = await credit(served, account["id"], f'{{"amount_usd": {amount}, "reason": "x"}}')
    assert_error(got, 400)
    assert got.json()["error"]["param"] == "amount_usd"
    assert await served.balance_usd(account["management_key"]) == "1"


async def test_a_json_number_is_exact(served: Served) -> None:
    account = await served.new_account("0")
    got = await credit(served, account["id"], '{"amount_usd": 2.000000001, "reason": "x"}')
    assert got.status_code == 200 and got.json()["balance_usd"] == "2.000000001"


@pytest.mark.parametrize("quota", ['"1e30"', '"1e309"', "1e30", "1e309", '"1_0"', '"-1"'])
async def test_token_quotas_are_money_within_the_maximum(served: Served, quota: str) -> None:
    account = await served.new_account("1")
    async with served.client(account["management_key"]) as c:
        got = await c.post(
            "/api/tokens",
            content=f'{{"name": "t", "quota_usd": {quota}}}',
            headers={"content-type": "application/json"},
        )
        assert_error(got, 400)
        assert got.json()["error"]["param"] == "quota_usd"
        assert (await c.get("/api/tokens")).json()["data"] == []


async def test_a_price_past_the_maximum_is_refused_and_the_model_still_sells(
    served: Served,
) -> None:
    for price in ('"1e30"', "1e30", '"1000000000.1"', '"-1"'):
        got = await served.admin.patch(
            "/api/models/gpt-4o-mini",
            content=f'{{"per_use": {{"input_mtok": {price}, "output_mtok": "1"}}}}',
            headers={"content-type": "application/json"},
        )
        assert_error(got, 400)
    _, key = await customer(served)
    async with served.client(key) as c:
        got = await c.post("/v1/chat/completions", json={**HELLO_CHAT, "model": "gpt-4o-mini"})
    assert got.status_code == 200, got.text


# --- defect 6: bad input answered 500, as plain text --------------------------------


async def test_nul_bytes_are_refused_everywhere(served: Served) -> None:
    account = await served.new_account("1")
    user = served.client(account["management_key"])
    async with user:
        checks = [
            await user.post("/api/tokens", json={"name": "a\x00b"}),
            await user.get("/api/usage", params={"model": "gpt\x004o"}),
            await user.get("/api/models", params={"kind": "te\x00xt"}),
            await user.get("/api/usage", params={"since": "2026-01-01\x00"}),
            await served.admin.post("/api/users", json={"username": "x\x00y"}),
            await served.admin.post(
                f"/api/users/{account['id']}/credit", json={"amount_usd": "1", "reason": "r\x00"}
            ),
            await served.admin.post("/api/channels", json={**CHANNEL, "name": "c\x00"}),
            await served.admin.post(
                "/api/models",
                json={"id": "m\x00", "kind": "text", "per_call": {"price": "1"}},
            ),
            await served.admin.patch("/api/models/gpt-4o", json={"description": "d\x00"}),
        ]
        for got in checks:
            assert_error(got, 400)
        assert (await user.get("/api/tokens")).json()["data"] == []
    assert await served.balance_usd(account["management_key"]) == "1"


async def test_deeply_nested_json_is_a_400(served: Served) -> None:
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000):
        got = await served.admin.post(
            "/api/quote", content=body, headers={"content-type": "application/json"}
        )
        assert_error(got, 400, "invalid_json")
    nested = {"model": "gpt-4o", "billing_mode": "pay_per_use", "request": {}}
    inner: Any = nested["request"]
    for _ in range(200):
        inner["x"] = {}
        inner = inner["x"]
    assert_error(await served.admin.post("/api/quote", json=nested), 400, "invalid_json")


@pytest.mark.parametrize(
    "path",
    [
        "/api/tokens/99999999999999999999",
        "/api/tokens/-1",
        "/api/tokens/٣",
        "/api/users/99999999999999999999",
        "/api/users/99999999999999999999/credit",
        "/api/channels/99999999999999999999",
        "/api/usage?cursor=99999999999999999999",
        "/api/usage?cursor=٣",
        "/api/usage?token_id=99999999999999999999",
        "/api/usage?account_id=99999999999999999999",
        "/api/tokens?account_id=99999999999999999999",
        "/api/models?token_id=99999999999999999999",
        "/api/usage?limit=99999999999999999999",
        "/api/usage?model=" + "x" * 5000,
    ],
)
async def test_ids_and_cursors_have_ranges(served: Served, path: str) -> None:
    method = "POST" if path.endswith("/credit") else "GET"
    got = await served.admin.request(method, path, json={"amount_usd": "1", "reason": "r"})
    assert_error(got, 400)


async def test_an_account_id_must_name_an_account(served: Served) -> None:
    got = await served.admin.post("/api/tokens", json={"name": "t", "account_id": 99999})
    assert_error(got, 404, "account_not_found")
    for bad in ([1], "1", 10**20, True):
        got = await served.admin.post("/api/tokens", json={"name": "t", "account_id": bad})
        assert_error(got, 400)
    got = await served.admin.post("/api/quote", json={"model": "gpt-4o", "token_id": [1]})
    assert_error(got, 400)


async def test_channel_fields_have_types_and_ranges(served: Served) -> None:
    good = CHANNEL
    for bad in (
        {"type": ["openai"]},
        {"type": {"a": 1}},
        {"priority": 10**30},
        {"priority": 2**31},
        {"priority": "1"},
        {"name": "n" * 10_000},
        {"models": ["m"] * 100_000},
        {"base_url": "http://" + "h" * 10_000},
    ):
        assert_error(await served.admin.post("/api/channels", json={**good, **bad}), 400)
    made = await served.admin.post("/api/channels", json={**good, "priority": 1_000_000})
    assert made.status_code == 201, made.text
    got = await served.admin.patch(f"/api/channels/{made.json()['id']}", json={"type": ["x"]})
    assert_error(got, 400)


async def test_api_bodies_have_the_v1_size_limit(
    database_url: str, catalog_models: list[Model]
) -> None:
    settings = test_settings(database_url, max_body_bytes=100_000)
    async with serve(settings, catalog_models) as s:
        big = {"model": "gpt-4o", "billing_mode": "pay_per_use", "request": {"x": "y" * 200_000}}
        assert_error(await s.admin.post("/api/quote", json=big), 413, "request_too_large")

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted as it comes
            yield b'{"model": "gpt-4o", "billing_mode": "pay_per_use", "x": "'
            for _ in range(30):
                yield b"y" * 10_000
            yield b'"}'

        got = await s.admin.post(
            "/api/quote", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_error(got, 413, "request_too_large")
        # the connection is still good for the next request
        assert (await s.admin.get("/api/me")).status_code == 200


async def test_an_unexpected_failure_is_a_json_500_and_the_connection_lives(
    tmp_path: Any, catalog_models: list[Model]
) -> None:
    path = tmp_path / "broken.db"
    async with serve(test_settings(f"sqlite:///{path}"), catalog_models) as s:
        assert (await s.admin.get("/api/channels")).status_code == 200
        with sqlite3.connect(path) as db:  # a real failure under the running gateway
            db.execute("DROP TABLE channels")
        for _ in range(2):  # on one connection: it is not reset
            got = await s.admin.get("/api/channels")
            assert_error(got, 500, "internal_error")
            assert "channels" not in got.text  # no internals in the answer
        assert (await s.admin.get("/api/me")).status_code == 200


# --- new-user finding: provider is optional -----------------------------------------


async def test_a_model_needs_no_provider(served: Served) -> None:
    got = await served.admin.post(
        "/api/models", json={"id": "my-model", "kind": "text", "per_call": {"price": "0.01"}}
    )
    assert got.status_code == 201, got.text
    assert got.json()["provider"] == "custom"
    assert (await served.admin.get("/api/models/my-model")).json()["provider"] == "custom"


# --- the console ----------------------------------------------------------------------


async def test_console_forms_refuse_bad_amounts_with_a_page(served: Served) -> None:
    admin = await new_user(served, role="admin")
    target = await served.new_account("1")
    async with Browser(served.base_url) as b:
        assert (await b.sign_in(admin["username"])).status_code == 303
        for amount in ("1_000", "٣", "9223372036.854775807", "1e30", "NaN"):
            got = await b.post(
                f"/admin/accounts/{target['id']}/credit", {"amount_usd": amount, "reason": "x"}
            )
            assert got.status_code == 303, got.text
            page = await b.get("/admin/accounts")
            assert "Amount" in page.text and "error" in page.text
        assert await served.balance_usd(target["management_key"]) == "1"
        for path in (
            "/admin/accounts/99999999999999999999/credit",
            "/tokens/99999999999999999999",
        ):
            got = await b.post(path, {"amount_usd": "1", "reason": "x"})
            assert got.status_code == 404, got.text
            assert got.headers["content-type"].startswith("text/html")
        for query in ("token=99999999999999999999", "token=²", "cursor=²", "model=a%00b"):
            got = await b.get(f"/usage?{query}")
            assert 400 <= got.status_code < 500, (query, got.status_code)
            assert got.headers["content-type"].startswith("text/html")
        got = await b.post("/tokens", {"name": "t", "quota_usd": "1e30", "billing_mode": "",
                                       "expires_at": "", "models": ""})  # fmt: skip
        assert got.status_code == 400 and "Quota" in got.text


async def test_console_bodies_have_the_size_limit(
    database_url: str, catalog_models: list[Model]
) -> None:
    settings = test_settings(database_url, max_body_bytes=50_000)
    async with serve(settings, catalog_models) as s, Browser(s.base_url) as b:
        got = await b.post("/signin", {"username": "x" * 100_000, "password": "y"})
        assert got.status_code == 413, got.text
        assert got.headers["content-type"].startswith("text/html")


# --- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def cli_database(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TOLLWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("TOLLWAY_ADMIN_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "250")


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli_app, list(args))


def cli_fails(*args: str) -> str:
    result = run_cli(*args)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert message and len(message.splitlines()) <= 2, message
    return message


@pytest.mark.usefixtures("cli_database")
def test_the_cli_refuses_bad_amounts_in_one_line() -> None:
    assert run_cli("user", "create", "alice").exit_code == 0
    for amount in ("1_000", "٣", "1e3", "NaN", "9223372036.854775807", "1e30", " 1 0"):
        assert "AMOUNT_USD" in cli_fails("user", "credit", "alice", amount, "--reason", "x")
    assert run_cli("user", "credit", "alice", "1000000000", "--reason", "most").exit_code == 0
    assert "maximum" in cli_fails("user", "credit", "alice", "1", "--reason", "past")
    assert "No user" in cli_fails("user", "credit", "²", "1", "--reason", "x")
    for quota in ("1e30", "1_0", "Infinity"):
        cli_fails("token", "create", "--user", "alice", "--name", "t", "--quota", quota)
    cli_fails("channel", "add", "--name", "c", "--type", "openai", "--base-url",
              "http://127.0.0.1:1/v1", "--api-key", "k", "--priority", str(10**30))  # fmt: skip
    cli_fails("prices", "import", "--markup", "1e30")
    cli_fails("usage", "--since", "9999-12-31T23:59:59-23:59")
    assert "1000000000" in run_cli("user", "list").stdout


async def test_quote_counts_have_a_range(served: Served) -> None:
    base = {"model": "gpt-4o", "billing_mode": "pay_per_use"}
    for field, value in (("input_tokens", 10**30), ("n", 10**13), ("output_tokens", -1)):
        got = await served.admin.post("/api/quote", json={**base, field: value})
        assert_error(got, 400)
        assert got.json()["error"]["param"] == field
    got = await served.admin.post("/api/quote", json={**base, "input_tokens": 10**12})
    assert got.status_code == 200, got.text


async def test_the_console_and_cli_read_times_past_year_9999_as_bad_input(served: Served) -> None:
    account = await new_user(served)
    async with Browser(served.base_url) as b:
        assert (await b.sign_in(account["username"])).status_code == 303
        form = {"name": "t", "quota_usd": "", "billing_mode": "", "models": ""}
        got = await b.post("/tokens", {**form, "expires_at": "9999-12-31T23:59-23:59"})
        assert got.status_code == 400 and "Expires" in got.text
        assert (await b.get("/advisor?token=²")).status_code == 400
