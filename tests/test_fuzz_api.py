"""Hostile input for every /api route (SPEC §6): wrong types, huge numbers,
NUL bytes, deep nesting, long strings, in path params, query params and JSON
bodies, as an admin and as a plain user.

Whatever comes in, the gateway answers with no 5xx, every error is JSON in
OpenAI's shape, and a rejected request changes no account and no token.

Hypothesis drives a blocking client on a thread while the served gateway runs
on the test's event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.api import create_api

from conftest import ADMIN_KEY, Served
from fuzzing import FUZZ, HOSTILE_INTS, HOSTILE_TEXT, assert_json_error, dump, values

PRICE_BLOCK = st.fixed_dictionaries(
    {},
    optional={
        "input_mtok": values,
        "output_mtok": values,
        "cached_input_mtok": values,
        "image_output_mtok": values,
        "price": values,
        "unit": values,
        "variants": values,
        "default_variant": values,
    },
)

CHANNEL_FIELDS = ["name", "type", "base_url", "api_key", "api_keys", "key_strategy", "models",
                  "model_mapping", "priority", "weight", "groups", "methods", "enabled",
                  "status", "cost"]  # fmt: skip
# Each route's own fields, so the fuzz reaches past "unknown field" checks.
BODY_FIELDS: dict[str, list[str]] = {
    "POST /models": ["id", "kind", "provider", "aliases", "per_use", "per_call",
                     "default_method", "description", "source"],
    "PATCH /models/{name}": ["kind", "provider", "aliases", "per_use", "per_call",
                             "default_method", "description"],
    "POST /quote": ["model", "billing_mode", "token_id", "request", "input_tokens",
                    "output_tokens", "cached_input_tokens", "n", "seconds", "size", "quality"],
    "POST /tokens": ["name", "billing_mode", "quota_usd", "expires_at", "models",
                     "account_id", "group"],
    "PATCH /tokens/{token_id}": ["name", "billing_mode", "quota_usd", "expires_at", "models",
                                 "enabled", "account_id", "group"],
    "POST /users": ["username", "password", "role"],
    "PATCH /users/{account_id}": ["enabled", "password", "groups"],
    "POST /groups": ["name", "multiplier", "description", "auto_rank"],
    "PATCH /groups/{name}": ["multiplier", "description", "auto_rank"],
    "POST /users/{account_id}/credit": ["amount_usd", "reason"],
    "POST /channels": CHANNEL_FIELDS,
    "PATCH /channels/{channel_id}": CHANNEL_FIELDS,
    "POST /channels/{channel_id}/test": ["model"],
}  # fmt: skip
QUERY_FIELDS: dict[str, list[str]] = {
    "GET /models": ["billing_mode", "token_id", "kind"],
    "GET /models/{name}": ["billing_mode"],
    "GET /tokens": ["account_id"],
    "GET /tokens/{token_id}": ["account_id"],
    "PATCH /tokens/{token_id}": ["account_id"],
    "DELETE /tokens/{token_id}": ["account_id"],
    "GET /usage": ["token_id", "model", "since", "until", "account_id", "limit", "cursor"],
    "GET /usage/margins": ["by", "since", "until"],
}


def api_routes() -> list[str]:
    """Every /api route, as 'METHOD /path' (the fuzz must know them all)."""
    paths = create_api().openapi()["paths"]
    return sorted(
        f"{method.upper()} {path.removeprefix('/api').replace('{name:path}', '{name}')}"
        for path, operations in paths.items()
        for method in operations
    )


ROUTES = api_routes()


@dataclass
class World:
    """What the fuzz runs against: ids that exist, and the two callers' keys."""

    admin_id: int
    user_id: int
    user_key: str
    token_id: int
    channel_id: int


def request_strategy(world: World) -> st.SearchStrategy[dict[str, Any]]:
    ids = st.one_of(
        st.sampled_from([world.user_id, world.token_id, world.channel_id]),
        st.sampled_from(HOSTILE_INTS),
        st.sampled_from(HOSTILE_TEXT),
        st.integers(),
    ).filter(lambda v: v != world.admin_id and v != str(world.admin_id))
    path_values = {
        "account_id": ids,
        "token_id": ids,
        "channel_id": ids,
        "name": st.one_of(st.sampled_from(["gpt-4o", "dall-e-3", "nope"]), st.text(max_size=20),
                          st.sampled_from(HOSTILE_TEXT)),
    }  # fmt: skip
    query_value = st.one_of(
        st.sampled_from(HOSTILE_TEXT),
        st.sampled_from(HOSTILE_INTS).map(str),
        st.integers().map(str),
        st.text(max_size=20),
        st.lists(st.sampled_from(["1", "2", "\x00"]), min_size=2, max_size=3),
    )

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        route = draw(st.sampled_from(ROUTES))
        method, template = route.split(" ", 1)
        path = template
        for name, strategy in path_values.items():
            if "{" + name + "}" in path:
                path = path.replace("{" + name + "}", quote(str(draw(strategy)), safe=""))
        params = draw(
            st.fixed_dictionaries(
                {}, optional={name: query_value for name in QUERY_FIELDS.get(route, [])}
            )
        )
        body: str | bytes | None = None
        if method in ("POST", "PATCH"):
            fields = BODY_FIELDS.get(route, [])
            per_field = {
                name: PRICE_BLOCK if name in ("per_use", "per_call") else values for name in fields
            }
            shape = draw(st.sampled_from(["fields", "fields", "fields", "any", "bytes"]))
            if shape == "fields":
                body = dump(draw(st.fixed_dictionaries({}, optional=per_field)))
            elif shape == "any":
                body = dump(draw(values))
            else:
                body = draw(
                    st.sampled_from(
                        [b"", b"{", b"\xff\xfe", b'{"a": NaN}', b'{"a": Infinity}', b"null"]
                    )
                )
        as_admin = draw(st.booleans())
        return {"method": method, "path": "/api" + path, "params": params, "body": body,
                "as_admin": as_admin, "route": route}  # fmt: skip

    return build()


def snapshot(admin: httpx.Client, world: World) -> dict[str, Any]:
    """Every account's money and every token, as the API shows them."""
    users = admin.get("/api/users")
    assert users.status_code == 200, users.text
    accounts = {a["id"]: a for a in users.json()["data"]}
    tokens = {}
    for account_id in accounts:
        got = admin.get("/api/tokens", params={"account_id": account_id})
        assert got.status_code == 200, got.text
        tokens.update({t["id"]: t for t in got.json()["data"]})
    return {"accounts": accounts, "tokens": tokens}


def fuzz(base_url: str, world: World) -> None:
    admin = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    plain = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {world.user_key}"})

    @FUZZ
    @given(request_strategy(world))
    def one(call: dict[str, Any]) -> None:
        before = snapshot(admin, world)
        client = admin if call["as_admin"] else plain
        headers = {"content-type": "application/json"} if call["body"] is not None else {}
        got = client.request(
            call["method"],
            call["path"],
            params=call["params"],
            content=call["body"],
            headers=headers,
        )
        assert got.status_code < 500, (call["route"], got.status_code, got.text[:500])
        if got.status_code >= 400:
            assert_json_error(got)
            after = snapshot(admin, world)
            assert after == before, (call["route"], got.status_code, got.text[:300])
        elif got.status_code != 204:
            got.json()
        if call["method"] == "PATCH" and call["route"].startswith("PATCH /users"):
            admin.patch(f"/api/users/{world.user_id}", json={"enabled": True})

    try:
        one()
    finally:
        admin.close()
        plain.close()


def test_the_fuzz_knows_every_api_route() -> None:
    templates = {r.split(" ", 1)[1] for r in ROUTES}
    for route in {*BODY_FIELDS, *QUERY_FIELDS}:
        assert route in ROUTES, route
    assert "/users/{account_id}/credit" in templates
    assert len(ROUTES) >= 20


@pytest.mark.timeout(300)
async def test_hostile_input_on_every_api_route(served: Served) -> None:
    admin_me = (await served.admin.get("/api/me")).json()
    account = await served.new_account("5")
    token = await served.new_token(account["management_key"], quota_usd="3")
    channels = (await served.admin.get("/api/channels")).json()["data"]
    world = World(
        admin_id=admin_me["id"],
        user_id=account["id"],
        user_key=account["management_key"],
        token_id=token["id"],
        channel_id=channels[0]["id"],
    )
    await asyncio.to_thread(fuzz, served.base_url, world)
