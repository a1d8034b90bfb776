"""JSON logs: one object a line, a line per call with who, what and how it
ended, and never a key: a real `tollway serve` with TOLLWAY_LOG_FORMAT=json,
called with the openai SDK."""

from __future__ import annotations

import asyncio
import logging
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
from test_observe_metrics import CHAT, add_sim_channel

from tollway.observe.logs import JsonFormatter
from tollway.simulator import Simulator

from conftest import ADMIN_KEY
from processes import gateway_processes


def test_a_record_is_one_json_line_with_its_extra_fields() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "tollway.x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    record.request_id = "req-1"
    line = JsonFormatter().format(record)
    assert "\n" not in line.split('"exc_info"')[0]  # the traceback is a JSON string
    got = orjson.loads(line)
    assert got["level"] == "ERROR"
    assert got["logger"] == "tollway.x"
    assert got["message"] == "failed here"
    assert got["request_id"] == "req-1"
    assert got["time"].endswith("+00:00")
    assert "ValueError: boom" in got["exc_info"]


def customer_keys(base_url: str) -> tuple[dict[str, Any], str, str]:
    """A new account with credit and a token: (account, management key, API key)."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    user = httpx.post(f"{base_url}/api/users", json={"username": "l"}, headers=admin, timeout=30)
    assert user.status_code == 201, user.text
    account: dict[str, Any] = user.json()
    credit = {"amount_usd": "10", "reason": "test"}
    url = f"{base_url}/api/users/{account['id']}/credit"
    assert httpx.post(url, json=credit, headers=admin, timeout=30).status_code == 200
    mine = {"Authorization": f"Bearer {account['management_key']}"}
    token = httpx.post(f"{base_url}/api/tokens", json={"name": "t"}, headers=mine, timeout=30)
    assert token.status_code == 201, token.text
    return account, account["management_key"], str(token.json()["key"])


async def test_calls_logged_as_json_without_keys(tmp_path: Path, simulator: Simulator) -> None:
    env = {
        "TOLLWAY_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
        "TOLLWAY_LOG_FORMAT": "json",
    }
    with gateway_processes(env, tmp_path) as started:
        base_url = started[0][0]
        await asyncio.to_thread(add_sim_channel, base_url, simulator.base_url)
        account, management_key, key = await asyncio.to_thread(customer_keys, base_url)
        client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)
        try:
            raw = await client.chat.completions.with_raw_response.create(**CHAT)  # type: ignore[call-overload]
        finally:
            await client.close()
        request_id = raw.headers["x-request-id"]
        usage = httpx.get(
            f"{base_url}/api/usage",
            headers={"Authorization": f"Bearer {management_key}"},
            timeout=30,
        ).json()["data"]
    lines = (tmp_path / "gateway0.log").read_text().splitlines()
    # (the CLI's banner, before the server starts, is the one plain line)
    assert all(line.startswith(("{", "Tollway on ")) for line in lines), lines
    logged = [orjson.loads(line) for line in lines if line.startswith("{")]
    for line in lines:
        for secret in (key, management_key, ADMIN_KEY, "sim-key"):
            assert secret not in line
    calls = [entry for entry in logged if entry["logger"] == "tollway.calls"]
    assert len(calls) == 1, logged
    call = calls[0]
    assert call["request_id"] == request_id
    assert call["account_id"] == account["id"]
    assert call["token_id"] == usage[0]["token_id"]
    assert call["model"] == "gpt-4o-mini"
    assert call["method"] == "per_use"
    assert call["billing_mode"]
    assert Decimal(call["cost_usd"]) == Decimal(usage[0]["cost_usd"]) > 0
    assert call["status"] == "ok"
    assert isinstance(call["duration_ms"], int)
    assert isinstance(call["channel_id"], int)
    assert {"time", "level", "logger", "message"} <= call.keys()
