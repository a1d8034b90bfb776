"""Every way a relay call can be refused or fail: an OpenAI-shaped error with
the right status, no charge, and (when refused) nothing sent upstream."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tollway.simulator import Simulator
from tollway.types import Model

from conftest import Served, serve, test_settings

HELLO = [{"role": "user", "content": "Hello there"}]


async def customer(served: Served, credit: str = "10", **fields: Any) -> tuple[str, str, int]:
    account = await served.new_account(credit)
    token = await served.new_token(account["management_key"], **fields)
    return account["management_key"], token["key"], token["id"]


async def post_chat(served: Served, key: str | None, body: Any, **kw: Any) -> httpx.Response:
    async with served.client(key) as c:
        if isinstance(body, bytes):
            return await c.post(
                "/v1/chat/completions",
                content=body,
                headers={"Content-Type": "application/json"},
                **kw,
            )
        return await c.post("/v1/chat/completions", json=body, **kw)


def error_of(got: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert got.status_code == status, got.text
    error: dict[str, Any] = got.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["message"]
    return error


async def unchanged(served: Served, mkey: str, simulator: Simulator, sent_before: int) -> None:
    assert await served.balance_usd(mkey) == "10"
    async with served.client(mkey) as c:
        assert (await c.get("/api/usage")).json()["data"] == []
    assert simulator.stats.requests == sent_before, "a refused call reached the upstream"


CASES = [
    ("malformed json", b'{"model": "gpt-4o", "messages": [', 400, "invalid_json"),
    ("not an object", b"[1, 2]", 400, "invalid_json"),
    ("no model", {"messages": HELLO}, 400, "missing_model"),
    ("no messages", {"model": "gpt-4o"}, 400, "invalid_request"),
    ("empty messages", {"model": "gpt-4o", "messages": []}, 400, "invalid_request"),
    (
        "bad max_tokens",
        {"model": "gpt-4o", "messages": HELLO, "max_tokens": -1},
        400,
        "invalid_request",
    ),
    ("bad n", {"model": "gpt-4o", "messages": HELLO, "n": "two"}, 400, "invalid_request"),
    ("bad stream", {"model": "gpt-4o", "messages": HELLO, "stream": "yes"}, 400, "invalid_request"),
    ("unknown model", {"model": "gpt-9-ultra", "messages": HELLO}, 404, "model_not_found"),
]


@pytest.mark.parametrize(("case", "body", "status", "code"), CASES, ids=[c[0] for c in CASES])
async def test_bad_requests(
    served: Served, simulator: Simulator, case: str, body: Any, status: int, code: str
) -> None:
    mkey, key, _ = await customer(served)
    sent = simulator.stats.requests
    error_of(await post_chat(served, key, body), status, code)
    await unchanged(served, mkey, simulator, sent)


async def test_unknown_model_suggests_close_names(served: Served) -> None:
    _, key, _ = await customer(served)
    error = error_of(
        await post_chat(served, key, {"model": "gpt4o", "messages": HELLO}), 404, "model_not_found"
    )
    assert "gpt-4o" in error["message"] and error["param"] == "model"


@pytest.mark.parametrize("header", [None, "Bearer sk-not-a-real-key", "Basic abc"])
async def test_wrong_or_missing_key(served: Served, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=served.base_url, headers=headers) as c:
        got = await c.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO})
    error_of(got, 401, "invalid_api_key")


async def test_disabled_token(served: Served, simulator: Simulator) -> None:
    mkey, key, token_id = await customer(served)
    async with served.client(mkey) as c:
        assert (
            await c.patch(f"/api/tokens/{token_id}", json={"enabled": False})
        ).status_code == 200
    sent = simulator.stats.requests
    error_of(
        await post_chat(served, key, {"model": "gpt-4o", "messages": HELLO}), 401, "token_disabled"
    )
    await unchanged(served, mkey, simulator, sent)


async def test_expired_token(served: Served, simulator: Simulator) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    mkey, key, _ = await customer(served, expires_at=past)
    sent = simulator.stats.requests
    error_of(
        await post_chat(served, key, {"model": "gpt-4o", "messages": HELLO}), 401, "token_expired"
    )
    await unchanged(served, mkey, simulator, sent)


async def test_deleted_token(served: Served) -> None:
    mkey, key, token_id = await customer(served)
    async with served.client(mkey) as c:
        assert (await c.delete(f"/api/tokens/{token_id}")).status_code == 204
    error_of(
        await post_chat(served, key, {"model": "gpt-4o", "messages": HELLO}), 401, "invalid_api_key"
    )


async def test_model_outside_allowlist(served: Served, simulator: Simulator) -> None:
    mkey, key, _ = await customer(served, models=["gpt-4o-mini"])
    sent = simulator.stats.requests
    error = error_of(
        await post_chat(served, key, {"model": "gpt-4o", "messages": HELLO}),
        403,
        "model_not_allowed",
    )
    assert "gpt-4o-mini" in error["message"]
    await unchanged(served, mkey, simulator, sent)


async def test_mode_mismatch_says_why_and_how_to_fix(served: Served, simulator: Simulator) -> None:
    mkey, key, _ = await customer(served, billing_mode="pay_per_call")
    sent = simulator.stats.requests
    error = error_of(
        await post_chat(served, key, {"model": "gpt-4o", "messages": HELLO}),
        403,
        "billing_mode_mismatch",
    )
    message = error["message"]
    assert "pay_per_call" in message and "gpt-4o" in message and "per_use" in message
    assert "pay_per_use_priority" in message
    await unchanged(served, mkey, simulator, sent)


async def test_pay_per_use_cannot_call_per_call_only_model(
    served: Served, simulator: Simulator
) -> None:
    mkey, key, _ = await customer(served, billing_mode="pay_per_use")
    sent = simulator.stats.requests
    async with served.client(key) as c:
        got = await c.post(
            "/v1/images/generations", json={"model": "flux-1.1-pro", "prompt": "a lighthouse"}
        )
    error = error_of(got, 403, "billing_mode_mismatch")
    assert "pay_per_call" in error["message"]
    await unchanged(served, mkey, simulator, sent)


async def test_insufficient_balance(served: Served, simulator: Simulator) -> None:
    account = await served.new_account("0.0001")
    token = await served.new_token(account["management_key"])
    sent = simulator.stats.requests
    got = await post_chat(served, token["key"], {"model": "gpt-4o", "messages": HELLO})
    error = error_of(got, 402, "insufficient_quota")
    assert "lower max_tokens" in error["message"]
    assert await served.balance_usd(account["management_key"]) == "0.0001"
    assert simulator.stats.requests == sent


async def test_small_max_tokens_fits_a_small_balance(served: Served) -> None:
    account = await served.new_account("0.001")
    token = await served.new_token(account["management_key"])
    body = {"model": "gpt-4o", "messages": HELLO, "max_tokens": 16}
    got = await post_chat(served, token["key"], body)
    assert got.status_code == 200, got.text


async def test_token_quota(served: Served, simulator: Simulator) -> None:
    mkey, key, _ = await customer(served, quota_usd="0.0001")
    sent = simulator.stats.requests
    error = error_of(
        await post_chat(served, key, {"model": "gpt-4o", "messages": HELLO}),
        402,
        "insufficient_quota",
    )
    assert "quota" in error["message"]
    await unchanged(served, mkey, simulator, sent)


async def test_oversized_body(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> None:
    async with serve(test_settings(database_url, max_body_bytes=1000), catalog_models) as s:
        account = await s.new_account()
        token = await s.new_token(account["management_key"])
        big = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 2000}]}
        error_of(await post_chat(s, token["key"], big), 413, "request_too_large")
        assert await s.balance_usd(account["management_key"]) == "10"


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [
        ("500", 502, "upstream_error"),
        ("503", 502, "upstream_error"),
        ("429", 429, "rate_limit_exceeded"),
        ("400", 400, "upstream_rejected_request"),
    ],
)
async def test_upstream_errors_release_the_hold(
    served: Served, directive: str, status: int, code: str
) -> None:
    mkey, key, _ = await customer(served)
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": f"[sim:error={directive}]"}],
    }
    error_of(await post_chat(served, key, body), status, code)
    stream_body = {**body, "stream": True}
    error_of(await post_chat(served, key, stream_body), status, code)
    assert await served.balance_usd(mkey) == "10"
    async with served.client(mkey) as c:
        records = (await c.get("/api/usage")).json()["data"]
    assert [r["cost_usd"] for r in records] == ["0", "0"]
    assert {r["status"] for r in records} == {"upstream_error"}
    me = await served.me_at_rest(mkey)
    assert me["held_usd"] == "0"


async def test_upstream_down(served: Served) -> None:
    mkey, key, _ = await customer(served)
    channels = (await served.admin.get("/api/channels")).json()["data"]
    down = {"base_url": "http://127.0.0.1:9/v1"}
    await served.admin.patch(f"/api/channels/{channels[0]['id']}", json=down)
    error_of(
        await post_chat(served, key, {"model": "gpt-4o", "messages": HELLO}), 502, "upstream_error"
    )
    assert await served.balance_usd(mkey) == "10"


async def test_no_channel_for_model(served: Served) -> None:
    mkey, key, _ = await customer(served)
    channels = (await served.admin.get("/api/channels")).json()["data"]
    await served.admin.patch(f"/api/channels/{channels[0]['id']}", json={"models": ["gpt-4o"]})
    error_of(
        await post_chat(served, key, {"model": "claude-3-5-sonnet-20241022", "messages": HELLO}),
        503,
        "model_not_available",
    )
    assert await served.balance_usd(mkey) == "10"


async def test_unknown_endpoint_is_openai_shaped(served: Served) -> None:
    async with served.client() as c:
        error_of(await c.get("/v1/nothing-here"), 404, "not_found")
        error_of(await c.get("/v1/chat/completions"), 405, "method_not_allowed")


async def test_upstream_timeout(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> None:
    async with serve(test_settings(database_url, upstream_timeout_s=1), catalog_models) as s:
        channel = {
            "name": "sim",
            "type": "openai",
            "base_url": simulator.base_url,
            "api_key": "sim-key",
            "models": ["*"],
        }
        assert (await s.admin.post("/api/channels", json=channel)).status_code == 201
        account = await s.new_account()
        token = await s.new_token(account["management_key"])
        slow = {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "[sim:latency_ms=3000]"}],
        }
        error_of(await post_chat(s, token["key"], slow), 504, "upstream_timeout")
        assert await s.balance_usd(account["management_key"]) == "10"


async def test_hostile_video_ids_and_counts_are_4xx(served: Served) -> None:
    _, key, _ = await customer(served)
    async with served.client(key) as c:
        for path in ("/v1/videos/%00", "/v1/videos/video_%00x", "/v1/videos/" + "v" * 200):
            for method in ("GET", "DELETE"):
                got = await c.request(method, path)
                assert got.status_code == 404, (method, path, got.text)
                assert got.json()["error"]["param"] == "video_id"
        for params in ({"limit": "²"}, {"limit": "٣"}, {"limit": "9" * 40}, {"after": "a\x00"}):
            got = await c.get("/v1/videos", params=params)
            assert got.status_code == 400, (params, got.text)


async def test_an_unexpected_failure_on_a_v1_route_is_a_json_500(
    tmp_path: Any, catalog_models: list[Model]
) -> None:
    path = tmp_path / "broken.db"
    async with serve(test_settings(f"sqlite:///{path}"), catalog_models) as s:
        _, key, _ = await customer(s)
        async with s.client(key) as c:
            assert (await c.get("/v1/videos")).status_code == 200
            with sqlite3.connect(path) as db:  # a real failure under the running gateway
                db.execute("DROP TABLE video_jobs")
            for _ in range(2):  # on one connection: it is not reset
                got = await c.get("/v1/videos")
                assert got.status_code == 500, got.text
                assert got.json()["error"]["code"] == "internal_error"
                assert "video_jobs" not in got.text  # no internals in the answer
