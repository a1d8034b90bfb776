"""The management API (SPEC §5), against a served gateway."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tollway.simulator import Simulator
from tollway.types import Model

from conftest import Served, serve, test_settings

HELLO = [{"role": "user", "content": "Hello there"}]


async def user(served: Served, credit: str = "10") -> tuple[dict[str, Any], httpx.AsyncClient]:
    account = await served.new_account(credit)
    return account, served.client(account["management_key"])


async def test_billing_modes_lists_five_with_live_counts(served: Served) -> None:
    async with served.client() as c:
        got = await c.get("/api/billing-modes")
    modes = {m["value"]: m for m in got.json()["data"]}
    assert list(modes) == [
        "pay_per_use_priority",
        "pay_per_use",
        "pay_per_call",
        "pay_per_call_priority",
        "hybrid",
    ]
    assert set(modes["hybrid"]) == {
        "value",
        "name",
        "description",
        "recommended",
        "applicable",
        "models_reachable",
    }
    assert modes["pay_per_use_priority"]["recommended"] is True
    assert modes["pay_per_use_priority"]["name"] == "Pay-per-Use Priority"
    assert modes["hybrid"]["applicable"] is False
    total = len(served.gw.state.catalog)
    assert total >= 200
    assert modes["pay_per_use_priority"]["models_reachable"] == total
    assert modes["pay_per_call_priority"]["models_reachable"] == total
    per_use = modes["pay_per_use"]["models_reachable"]
    per_call = modes["pay_per_call"]["models_reachable"]
    assert 0 < per_call < per_use < total


async def test_token_lifecycle(served: Served) -> None:
    _account, c = await user(served)
    async with c:
        got = await c.post("/api/tokens", json={"name": "my app"})
        assert got.status_code == 201
        created = got.json()
        assert (
            created["key"].startswith("sk-") and created["billing_mode"] == "pay_per_use_priority"
        )
        assert set(created) >= {
            "id",
            "name",
            "key_prefix",
            "billing_mode",
            "quota_usd",
            "used_usd",
            "expires_at",
            "models",
            "enabled",
            "created_at",
            "last_used_at",
        }
        assert created["key"].startswith(created["key_prefix"][:7])
        token_id = created["id"]
        listed = (await c.get("/api/tokens")).json()["data"]
        assert [t["id"] for t in listed] == [token_id]
        assert "key" not in listed[0]
        one = (await c.get(f"/api/tokens/{token_id}")).json()
        assert "key" not in one and one["name"] == "my app"
        patch = {
            "billing_mode": "pay_per_call",
            "quota_usd": "2.50",
            "name": "renamed",
            "models": ["flux-1.1-pro"],
            "expires_at": "2030-01-01T00:00:00Z",
        }
        edited = (await c.patch(f"/api/tokens/{token_id}", json=patch)).json()
        assert edited["billing_mode"] == "pay_per_call" and edited["quota_usd"] == "2.5"
        assert edited["name"] == "renamed" and edited["models"] == ["flux-1.1-pro"]
        assert edited["expires_at"] == "2030-01-01T00:00:00Z"
        assert (await c.delete(f"/api/tokens/{token_id}")).status_code == 204
        assert (await c.get(f"/api/tokens/{token_id}")).status_code == 404
        assert (await c.get("/api/tokens")).json()["data"] == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "billing_mode": "cheap"}, "billing_mode"),
        ({"name": "x", "quota_usd": "-1"}, "quota_usd"),
        ({"name": "x", "quota_usd": "abc"}, "quota_usd"),
        ({"name": "x", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "x", "models": ["no-such-model"]}, "models"),
        ({"name": "x", "colour": "red"}, None),
    ],
)
async def test_token_create_rejects_bad_fields(
    served: Served, body: dict[str, Any], param: str | None
) -> None:
    _, c = await user(served)
    async with c:
        got = await c.post("/api/tokens", json=body)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["param"] == param


async def test_hybrid_is_refused_with_a_recommendation(served: Served) -> None:
    _, c = await user(served)
    async with c:
        got = await c.post("/api/tokens", json={"name": "x", "billing_mode": "hybrid"})
        assert got.status_code == 400
        error = got.json()["error"]
        assert error["code"] == "billing_mode_not_applicable"
        assert "pay_per_use_priority" in error["message"]
        token = (await c.post("/api/tokens", json={"name": "x"})).json()
        got = await c.patch(f"/api/tokens/{token['id']}", json={"billing_mode": "hybrid"})
        assert got.status_code == 400 and "pay_per_use_priority" in got.json()["error"]["message"]
        assert (await c.get(f"/api/tokens/{token['id']}")).json()["billing_mode"] == (
            "pay_per_use_priority"
        )


async def test_hybrid_when_enabled_uses_each_models_default(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> None:
    settings = test_settings(database_url, allow_hybrid=True)
    async with serve(settings, catalog_models) as s:
        channel = {
            "name": "sim",
            "type": "openai",
            "base_url": simulator.base_url,
            "api_key": "sim-key",
            "models": ["*"],
        }
        assert (await s.admin.post("/api/channels", json=channel)).status_code == 201
        account = await s.new_account()
        token = await s.new_token(account["management_key"], billing_mode="hybrid")
        assert token["billing_mode"] == "hybrid"
        modes = (await s.admin.get("/api/billing-modes")).json()["data"]
        assert {m["value"]: m["applicable"] for m in modes}["hybrid"] is True
        async with s.client(token["key"]) as c:
            text = await c.post(
                "/v1/chat/completions", json={"model": "deepseek-chat", "messages": HELLO}
            )
            image = await c.post(
                "/v1/images/generations",
                json={"model": "gemini-2.5-flash-image", "prompt": "a lighthouse"},
            )
        assert text.headers["x-tollway-billing-method"] == "per_use"  # its default
        assert image.headers["x-tollway-billing-method"] == "per_call"  # its default


async def test_mode_edit_applies_to_the_next_call(served: Served) -> None:
    _account, c = await user(served)
    async with c:
        token = (await c.post("/api/tokens", json={"name": "x"})).json()
        async with served.client(token["key"]) as api:
            body = {"model": "deepseek-chat", "messages": HELLO}
            first = await api.post("/v1/chat/completions", json=body)
            assert first.headers["x-tollway-billing-method"] == "per_use"
            await c.patch(f"/api/tokens/{token['id']}", json={"billing_mode": "pay_per_call"})
            second = await api.post("/v1/chat/completions", json=body)
            assert second.headers["x-tollway-billing-method"] == "per_call"
            refused = await api.post(
                "/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO}
            )
            assert refused.status_code == 403


async def test_v1_models_shows_only_what_the_mode_can_call(served: Served) -> None:
    _account, c = await user(served)
    async with c:
        per_call = (
            await c.post("/api/tokens", json={"name": "a", "billing_mode": "pay_per_call"})
        ).json()
        default = (await c.post("/api/tokens", json={"name": "b"})).json()
        limited = (await c.post("/api/tokens", json={"name": "c", "models": ["gpt-4o"]})).json()
    ids = {}
    for name, token in (("per_call", per_call), ("default", default), ("limited", limited)):
        async with served.client(token["key"]) as api:
            ids[name] = {m["id"] for m in (await api.get("/v1/models")).json()["data"]}
    assert "gpt-4o" not in ids["per_call"] and "flux-1.1-pro" in ids["per_call"]
    assert {"gpt-4o", "flux-1.1-pro"} <= ids["default"]
    assert len(ids["default"]) == len(served.gw.state.catalog)
    assert ids["limited"] == {"gpt-4o"}
    async with served.client(per_call["key"]) as api:
        assert (await api.get("/v1/models/flux-1.1-pro")).status_code == 200
        assert (await api.get("/v1/models/gpt-4o")).status_code == 404


async def test_models_catalog_with_a_mode(served: Served) -> None:
    _, c = await user(served)
    async with c:
        data = (await c.get("/api/models", params={"billing_mode": "pay_per_call"})).json()["data"]
        by_id = {m["id"]: m for m in data}
        assert by_id["gpt-4o"]["billing"]["method"] is None
        assert "pay_per_use_priority" in by_id["gpt-4o"]["billing"]["refused"]
        assert by_id["flux-1.1-pro"]["billing"]["method"] == "per_call"
        assert by_id["gpt-4o"]["per_use"] == {
            "input_mtok": "5",
            "output_mtok": "15",
            **(
                {"cached_input_mtok": by_id["gpt-4o"]["per_use"]["cached_input_mtok"]}
                if "cached_input_mtok" in by_id["gpt-4o"]["per_use"]
                else {}
            ),
        }
        assert by_id["sora_video2"]["per_call"] == {"price": "0.15", "unit": "video"}
        assert by_id["gemini-3-pro-image-preview"]["aliases"] == ["nano-banana-pro"]
        assert (await c.get("/api/models", params={"billing_mode": "bogus"})).status_code == 400
        images = (await c.get("/api/models", params={"kind": "image"})).json()["data"]
        assert images and {m["kind"] for m in images} == {"image"}


async def test_admin_adds_and_reprices_a_model_for_the_next_call(served: Served) -> None:
    new = {
        "id": "house-model",
        "kind": "text",
        "provider": "acme",
        "per_use": {"input_mtok": 1, "output_mtok": "2.5"},
    }
    got = await served.admin.post("/api/models", json=new)
    assert got.status_code == 201, got.text
    assert got.json()["per_use"] == {"input_mtok": "1", "output_mtok": "2.5"}
    account = await served.new_account()
    token = await served.new_token(account["management_key"])
    async with served.client(token["key"]) as api:
        first = await api.post(
            "/v1/chat/completions", json={"model": "house-model", "messages": HELLO}
        )
        assert first.headers["x-tollway-cost-usd"] == str(
            (8 * Decimal(1) + 16 * Decimal("2.5")) / 10**6
        )
        patch = {"per_use": {"input_mtok": "10", "output_mtok": "20"}, "per_call": {"price": 0.01}}
        got = await served.admin.patch("/api/models/house-model", json=patch)
        assert got.status_code == 400  # both methods need a default_method
        patch["default_method"] = "per_use"
        assert (await served.admin.patch("/api/models/house-model", json=patch)).status_code == 200
        second = await api.post(
            "/v1/chat/completions", json={"model": "house-model", "messages": HELLO}
        )
        assert second.headers["x-tollway-cost-usd"] == str((8 * 10 + 16 * 20) / Decimal(10**6))


async def test_a_price_edit_keeps_the_long_prompt_tiers_unless_it_names_them(
    served: Served,
) -> None:
    tier = {"above_tokens": 200000, "input_mtok": "2.5", "cached_input_mtok": "0.25",
            "output_mtok": "15"}  # fmt: skip
    before = (await served.admin.get("/api/models/gemini-2.5-pro")).json()
    assert before["per_use"]["tiers"] == [tier]

    cheaper = {"per_use": {"input_mtok": "1", "cached_input_mtok": "0.1", "output_mtok": "8"}}
    edited = await served.admin.patch("/api/models/gemini-2.5-pro", json=cheaper)
    assert edited.status_code == 200, edited.text
    assert edited.json()["per_use"] == {**cheaper["per_use"], "tiers": [tier]}

    dearer = {"per_use": {"input_mtok": "3", "cached_input_mtok": "0.1", "output_mtok": "8"}}
    refused = await served.admin.patch("/api/models/gemini-2.5-pro", json=dearer)
    assert refused.status_code == 400
    assert "cheaper in input_mtok" in refused.json()["error"]["message"]

    flat = {"per_use": {"input_mtok": "3", "output_mtok": "8", "tiers": []}}
    edited = await served.admin.patch("/api/models/gemini-2.5-pro", json=flat)
    assert edited.json()["per_use"] == {"input_mtok": "3", "output_mtok": "8"}


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "kind": "text", "provider": "acme"},  # no price
        {
            "id": "x",
            "kind": "text",
            "provider": "acme",
            "per_use": {"input_mtok": "-1", "output_mtok": "1"},
        },
        {"id": "x", "kind": "weird", "provider": "acme", "per_call": {"price": "1"}},
        {"id": "gpt-4o", "kind": "text", "provider": "acme", "per_call": {"price": "1"}},
    ],
)
async def test_admin_model_validation(served: Served, body: dict[str, Any]) -> None:
    got = await served.admin.post("/api/models", json=body)
    assert got.status_code in (400, 409), got.text
    assert got.json()["error"]["message"]


async def test_quote_from_usage_and_from_a_request(served: Served) -> None:
    _account, c = await user(served)
    async with c:
        got = await c.post(
            "/api/quote",
            json={
                "model": "gpt-4o",
                "billing_mode": "pay_per_use",
                "input_tokens": 12,
                "output_tokens": 9,
            },
        )
        quote = got.json()
        assert quote["method"] == "per_use" and quote["cost_usd"] == "0.000195"
        assert [line["name"] for line in quote["breakdown"]] == ["input_tokens", "output_tokens"]
        refused = (
            await c.post(
                "/api/quote",
                json={"model": "gpt-4o", "billing_mode": "pay_per_call", "input_tokens": 1},
            )
        ).json()
        assert refused["method"] is None and refused["refused"]["code"] == "billing_mode_mismatch"
        token = (
            await c.post("/api/tokens", json={"name": "t", "billing_mode": "pay_per_call"})
        ).json()
        images = (
            await c.post(
                "/api/quote", json={"model": "flux-1.1-pro", "token_id": token["id"], "n": 3}
            )
        ).json()
        assert images["cost_usd"] == "0.12" and images["billing_mode"] == "pay_per_call"
        from_request = (
            await c.post(
                "/api/quote",
                json={
                    "model": "gpt-4o",
                    "billing_mode": "pay_per_use_priority",
                    "request": {"model": "gpt-4o", "messages": HELLO, "max_tokens": 100},
                },
            )
        ).json()
        assert from_request["usage_source"] == "estimated"
        output_line = next(x for x in from_request["breakdown"] if x["name"] == "output_tokens")
        assert output_line["quantity"] == 100
        bad = await c.post(
            "/api/quote",
            json={"model": "gpt-4o", "billing_mode": "pay_per_use", "input_tokens": -5},
        )
        assert bad.status_code == 400


async def test_credit_debit_and_me(served: Served) -> None:
    account, c = await user(served, credit="0")
    url = f"/api/users/{account['id']}/credit"
    got = await served.admin.post(url, json={"amount_usd": "12.3456789012", "reason": "top-up"})
    assert got.status_code == 400  # finer than a nano-USD
    got = await served.admin.post(url, json={"amount_usd": 0.1, "reason": "top-up"})
    assert got.json()["balance_usd"] == "0.1"  # a JSON number, never through a float
    got = await served.admin.post(url, json={"amount_usd": "-0.025", "reason": "correction"})
    assert got.json()["balance_usd"] == "0.075"
    assert (await served.admin.post(url, json={"amount_usd": "1"})).status_code == 400  # no reason
    async with c:
        me = (await c.get("/api/me")).json()
    assert me["id"] == account["id"] and me["role"] == "user" and me["balance_usd"] == "0.075"
    assert [x["reason"] for x in me["recent_credits"]] == ["correction", "top-up"]


async def test_users_and_roles(served: Served) -> None:
    got = await served.admin.post("/api/users", json={"username": "ann", "password": "s3cret-pass"})
    assert got.status_code == 201
    ann = got.json()
    assert set(ann) == {"id", "username", "role", "management_key"} and ann["role"] == "user"
    assert (await served.admin.post("/api/users", json={"username": "ann"})).status_code == 409
    async with served.client(ann["management_key"]) as c:
        assert (await c.get("/api/users")).status_code == 403
        assert (
            await c.post(f"/api/users/{ann['id']}/credit", json={"amount_usd": "5", "reason": "me"})
        ).status_code == 403
        assert (await c.post("/api/channels", json={})).status_code == 403
        assert (await c.post("/api/models", json={})).status_code == 403
    listed = (await served.admin.get("/api/users")).json()["data"]
    assert "ann" in {u["username"] for u in listed}
    await served.admin.patch(f"/api/users/{ann['id']}", json={"enabled": False})
    async with served.client(ann["management_key"]) as c:
        assert (await c.get("/api/me")).status_code == 403


async def test_accounts_cannot_see_each_others_tokens_or_usage(served: Served) -> None:
    alice, a = await user(served)
    _bob, b = await user(served)
    async with a, b:
        token = (await a.post("/api/tokens", json={"name": "alice's"})).json()
        async with served.client(token["key"]) as api:
            assert (
                await api.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO})
            ).status_code == 200
        assert (await b.get(f"/api/tokens/{token['id']}")).status_code == 404
        assert (
            await b.patch(f"/api/tokens/{token['id']}", json={"name": "mine"})
        ).status_code == 404
        assert (await b.delete(f"/api/tokens/{token['id']}")).status_code == 404
        assert (await b.get("/api/tokens")).json()["data"] == []
        assert (await b.get("/api/tokens", params={"account_id": alice["id"]})).status_code == 403
        assert (await b.get("/api/usage")).json()["data"] == []
        assert (await b.get("/api/usage", params={"account_id": alice["id"]})).status_code == 403
        assert len((await a.get("/api/usage")).json()["data"]) == 1
    # an admin may act on any account
    assert (await served.admin.get(f"/api/tokens/{token['id']}")).status_code == 200
    got = await served.admin.get("/api/usage", params={"account_id": alice["id"]})
    assert len(got.json()["data"]) == 1


async def test_usage_filters_and_paging(served: Served) -> None:
    _account, c = await user(served)
    async with c:
        t1 = (await c.post("/api/tokens", json={"name": "one"})).json()
        t2 = (await c.post("/api/tokens", json={"name": "two"})).json()
        for token, model, times in ((t1, "gpt-4o", 3), (t2, "gpt-4o-mini", 2)):
            async with served.client(token["key"]) as api:
                for _ in range(times):
                    got = await api.post(
                        "/v1/chat/completions", json={"model": model, "messages": HELLO}
                    )
                    assert got.status_code == 200
        everything = (await c.get("/api/usage")).json()
        assert len(everything["data"]) == 5 and everything["next_cursor"] is None
        assert len((await c.get("/api/usage", params={"token_id": t2["id"]})).json()["data"]) == 2
        assert len((await c.get("/api/usage", params={"model": "gpt-4o"})).json()["data"]) == 3
        page1 = (await c.get("/api/usage", params={"limit": 2})).json()
        page2 = (
            await c.get("/api/usage", params={"limit": 2, "cursor": page1["next_cursor"]})
        ).json()
        page3 = (
            await c.get("/api/usage", params={"limit": 2, "cursor": page2["next_cursor"]})
        ).json()
        ids = [r["id"] for r in page1["data"] + page2["data"] + page3["data"]]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
        assert page3["next_cursor"] is None
        future = (await c.get("/api/usage", params={"since": "2999-01-01T00:00:00Z"})).json()
        assert future["data"] == []
        assert (await c.get("/api/usage", params={"since": "soon"})).status_code == 400
        total = sum(Decimal(r["cost_usd"]) for r in everything["data"])
        me = (await c.get("/api/me")).json()
        assert Decimal(me["balance_usd"]) == Decimal(10) - total
        tokens = {t["id"]: t for t in (await c.get("/api/tokens")).json()["data"]}
        assert (
            Decimal(tokens[t1["id"]]["used_usd"]) + Decimal(tokens[t2["id"]]["used_usd"]) == total
        )
        assert tokens[t1["id"]]["last_used_at"] is not None


async def test_channels_crud_hides_keys(served: Served) -> None:
    body = {
        "name": "x",
        "type": "openai",
        "base_url": "http://127.0.0.1:1/v1",
        "api_key": "sk-upstream-secret-1234",
        "models": ["gpt-4o"],
    }
    got = await served.admin.post("/api/channels", json=body)
    created = got.json()
    assert "secret" not in got.text and created["keys"] == [
        {"hint": "...1234", "enabled": True, "reason": None}
    ]
    listed = await served.admin.get("/api/channels")
    assert "secret" not in listed.text
    bad = await served.admin.post("/api/channels", json={**body, "type": "carrier-pigeon"})
    assert bad.status_code == 400
    bad = await served.admin.post("/api/channels", json={**body, "base_url": "ftp://x"})
    assert bad.status_code == 400
    got = await served.admin.patch(f"/api/channels/{created['id']}", json={"enabled": False})
    assert got.json()["enabled"] is False
    assert (await served.admin.delete(f"/api/channels/{created['id']}")).status_code == 204
    assert (await served.admin.get(f"/api/channels/{created['id']}")).status_code == 404


async def test_management_errors_are_openai_shaped(served: Served) -> None:
    async with served.client("tm-wrong") as c:
        got = await c.get("/api/me")
    assert got.status_code == 401 and got.json()["error"]["code"] == "invalid_api_key"
    got = await served.admin.post(
        "/api/tokens", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert got.status_code == 400 and got.json()["error"]["code"] == "invalid_json"
    got = await served.admin.get("/api/tokens/not-a-number")
    assert got.status_code == 400 and set(got.json()["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }


async def test_bootstrap_admin_survives_a_start_up_race(
    database_url: str, catalog_models: list[Model]
) -> None:
    from tollway.manage.accounts import ensure_bootstrap_admin

    async with serve(test_settings(database_url, admin_key=None), catalog_models) as s:
        # workers starting at once: all find no admin yet, one creates it
        await asyncio.gather(*(ensure_bootstrap_admin(s.gw, "tm-race") for _ in range(3)))
        async with s.client("tm-race") as c:
            users = (await c.get("/api/users")).json()["data"]
    assert [u["username"] for u in users] == ["admin"]
