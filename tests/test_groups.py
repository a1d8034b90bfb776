"""Price groups (SPEC §8): /api/groups, an account's groups, a token's group,
and every price a token sees — quotes, /api/models, the advisor's replay —
at catalog prices x its group's multiplier, exact, rounded half up once."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.billing.groups import exact_usd, scaled_model, scaled_nano
from tollway.billing.pricing import bill
from tollway.manage.advisor import advise_token, replay
from tollway.simulator import Simulator
from tollway.types import (
    NANO_PER_USD,
    TOKEN_CLASSES,
    BillingMethod,
    BillingMode,
    Model,
    ModelKind,
    PerCallPrice,
    PerUsePrice,
    Usage,
    usd_to_nano,
)

from conftest import Served, sdk

HELLO = [{"role": "user", "content": "Hello there"}]
ERROR_KEYS = {"message", "type", "param", "code"}


def assert_openai_error(got: httpx.Response, status: int, param: str | None = None) -> None:
    assert got.status_code == status, got.text
    error = got.json()["error"]
    assert set(error) == ERROR_KEYS and error["message"]
    if param is not None:
        assert error["param"] == param, error


async def new_group(served: Served, name: str, multiplier: str, **fields: Any) -> dict[str, Any]:
    got = await served.admin.post(
        "/api/groups", json={"name": name, "multiplier": multiplier, **fields}
    )
    assert got.status_code == 201, got.text
    group: dict[str, Any] = got.json()
    return group


async def account_in(served: Served, *groups: str) -> dict[str, Any]:
    account = await served.new_account("10")
    got = await served.admin.patch(f"/api/users/{account['id']}", json={"groups": list(groups)})
    assert got.status_code == 200, got.text
    assert got.json()["groups"] == list(groups)
    return account


async def quote(served: Served, key: str, **body: Any) -> dict[str, Any]:
    async with served.client(key) as c:
        got = await c.post("/api/quote", json=body)
    assert got.status_code == 200, got.text
    answer: dict[str, Any] = got.json()
    return answer


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def exact_nano(line_costs_usd: list[str]) -> Fraction:
    return sum((Fraction(Decimal(c)) for c in line_costs_usd), Fraction(0)) * NANO_PER_USD


# /api/groups


async def test_groups_crud(served: Served) -> None:
    listed = (await served.admin.get("/api/groups")).json()["data"]
    assert listed[0]["name"] == "default" and listed[0]["multiplier"] == "1"
    created = await new_group(served, "vip", "0.80", description="resellers")
    assert created["name"] == "vip" and created["multiplier"] == "0.8"
    assert created["description"] == "resellers" and created["auto_rank"] is None
    assert created["created_at"].endswith("Z")
    assert (await served.admin.get("/api/groups/vip")).json() == created
    edited = await served.admin.patch("/api/groups/vip", json={"multiplier": 0.75, "auto_rank": 3})
    assert edited.status_code == 200, edited.text
    assert edited.json()["multiplier"] == "0.75" and edited.json()["auto_rank"] == 3
    assert served.gw.state.groups["vip"].multiplier == Fraction(3, 4)
    assert served.gw.state.auto_groups == ("vip",)
    out = (await served.admin.patch("/api/groups/vip", json={"auto_rank": None})).json()
    assert out["auto_rank"] is None and served.gw.state.auto_groups == ()
    names = [g["name"] for g in (await served.admin.get("/api/groups")).json()["data"]]
    assert names == ["default", "vip"]
    # default's multiplier may change; its name may not, nor may any group's
    got = await served.admin.patch("/api/groups/default", json={"multiplier": "1.1"})
    assert got.json()["multiplier"] == "1.1"
    assert served.gw.state.groups["default"].multiplier == Fraction(11, 10)
    await served.admin.patch("/api/groups/default", json={"multiplier": "1"})
    assert_openai_error(
        await served.admin.patch("/api/groups/default", json={"name": "x"}), 400, "name"
    )
    duplicate = await served.admin.post("/api/groups", json={"name": "vip", "multiplier": "2"})
    assert_openai_error(duplicate, 409)
    assert duplicate.json()["error"]["code"] == "group_exists"
    taken = await served.admin.post("/api/groups", json={"name": "default", "multiplier": "2"})
    assert_openai_error(taken, 409)
    assert_openai_error(await served.admin.get("/api/groups/nope"), 404)
    assert_openai_error(await served.admin.patch("/api/groups/nope", json={}), 404)


async def test_groups_are_admin_only(served: Served) -> None:
    account = await served.new_account("0")
    async with served.client(account["management_key"]) as c:
        for got in (
            await c.get("/api/groups"),
            await c.post("/api/groups", json={"name": "mine", "multiplier": "0.01"}),
            await c.patch("/api/groups/default", json={"multiplier": "0.01"}),
        ):
            assert_openai_error(got, 403)
    assert served.gw.state.groups["default"].multiplier == 1
    assert "mine" not in served.gw.state.groups


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"multiplier": "1"}, "name"),
        ({"name": "x"}, "multiplier"),
        ({"name": "", "multiplier": "1"}, "name"),
        ({"name": "auto", "multiplier": "1"}, "name"),
        ({"name": "a b", "multiplier": "1"}, "name"),
        ({"name": "x" * 65, "multiplier": "1"}, "name"),
        ({"name": "é", "multiplier": "1"}, "name"),
        ({"name": 5, "multiplier": "1"}, "name"),
        ({"name": "x", "multiplier": "0"}, "multiplier"),
        ({"name": "x", "multiplier": "-0.5"}, "multiplier"),
        ({"name": "x", "multiplier": "1000.000000001"}, "multiplier"),
        ({"name": "x", "multiplier": "0.0000000001"}, "multiplier"),
        ({"name": "x", "multiplier": "1e3"}, "multiplier"),
        ({"name": "x", "multiplier": "1_000"}, "multiplier"),
        ({"name": "x", "multiplier": " 1"}, "multiplier"),
        ({"name": "x", "multiplier": "NaN"}, "multiplier"),
        ({"name": "x", "multiplier": "abc"}, "multiplier"),
        ({"name": "x", "multiplier": True}, "multiplier"),
        ({"name": "x", "multiplier": None}, "multiplier"),
        ({"name": "x", "multiplier": [1]}, "multiplier"),
        ({"name": "x", "multiplier": "1", "auto_rank": -1}, "auto_rank"),
        ({"name": "x", "multiplier": "1", "auto_rank": 1_000_001}, "auto_rank"),
        ({"name": "x", "multiplier": "1", "auto_rank": "3"}, "auto_rank"),
        ({"name": "x", "multiplier": "1", "auto_rank": 1.5}, "auto_rank"),
        ({"name": "x", "multiplier": "1", "auto_rank": True}, "auto_rank"),
        ({"name": "x", "multiplier": "1", "description": 7}, "description"),
        ({"name": "x", "multiplier": "1", "colour": "red"}, None),
    ],
)
async def test_bad_groups_are_400s(served: Served, body: dict[str, Any], param: str) -> None:
    got = await served.admin.post("/api/groups", json=body)
    assert_openai_error(got, 400, param)
    assert set(served.gw.state.groups) == {"default"}


async def test_a_json_number_multiplier_is_exact(served: Served) -> None:
    got = await served.admin.post(
        "/api/groups",
        content=b'{"name": "third", "multiplier": 0.333333333}',
        headers={"content-type": "application/json"},
    )
    assert got.status_code == 201, got.text
    assert got.json()["multiplier"] == "0.333333333"
    assert served.gw.state.groups["third"].multiplier == Fraction(333333333, 10**9)
    top = await new_group(served, "top", "1000")
    assert top["multiplier"] == "1000"


# An account's groups


async def test_account_groups(served: Served) -> None:
    await new_group(served, "vip", "0.8")
    account = await served.new_account("0")
    url = f"/api/users/{account['id']}"
    assert (await served.admin.get(url)).json()["groups"] == ["default"]
    got = await served.admin.patch(url, json={"groups": ["vip", "default", "vip"]})
    assert got.status_code == 200 and got.json()["groups"] == ["vip", "default"]
    for bad in ([], ["auto"], ["nope"], "vip", [5], None, ["vip", "x" * 300]):
        assert_openai_error(await served.admin.patch(url, json={"groups": bad}), 400, "groups")
    # nothing of a refused edit is applied
    both = await served.admin.patch(url, json={"enabled": False, "groups": []})
    assert_openai_error(both, 400, "groups")
    after = (await served.admin.get(url)).json()
    assert after["enabled"] is True and after["groups"] == ["vip", "default"]
    async with served.client(account["management_key"]) as c:
        assert_openai_error(await c.patch(url, json={"groups": ["default"]}), 403)
    listed = {a["id"]: a for a in (await served.admin.get("/api/users")).json()["data"]}
    assert listed[account["id"]]["groups"] == ["vip", "default"]


# A token's group


async def test_token_group_must_be_its_accounts(served: Served) -> None:
    await new_group(served, "vip", "0.8")
    plain = await served.new_account("0")
    async with served.client(plain["management_key"]) as c:
        made = await c.post("/api/tokens", json={"name": "t"})
        assert made.json()["group"] == "default"
        token_id = made.json()["id"]
        for group, code in (
            ("vip", "group_not_allowed"),
            ("nope", "group_not_found"),
            ("auto", "group_not_allowed"),
            ("", None),
            (7, None),
        ):
            for got in (
                await c.post("/api/tokens", json={"name": "t", "group": group}),
                await c.patch(f"/api/tokens/{token_id}", json={"group": group}),
            ):
                assert_openai_error(got, 400, "group")
                if code is not None:
                    assert got.json()["error"]["code"] == code
        assert [t["group"] for t in (await c.get("/api/tokens")).json()["data"]] == ["default"]
    member = await account_in(served, "default", "vip")
    async with served.client(member["management_key"]) as c:
        made = await c.post("/api/tokens", json={"name": "t", "group": "vip"})
        assert made.status_code == 201 and made.json()["group"] == "vip"
        moved = await c.patch(f"/api/tokens/{made.json()['id']}", json={"group": "default"})
        assert moved.status_code == 200 and moved.json()["group"] == "default"
        assert (await c.get(f"/api/tokens/{made.json()['id']}")).json()["group"] == "default"


async def test_auto_needs_one_of_the_accounts_groups_in_the_auto_list(served: Served) -> None:
    await new_group(served, "vip", "0.8")
    member = await account_in(served, "vip")
    async with served.client(member["management_key"]) as c:
        # without 'default' among its account's groups, a new token takes the first
        made = await c.post("/api/tokens", json={"name": "t"})
        assert made.status_code == 201 and made.json()["group"] == "vip"
        refused = await c.post("/api/tokens", json={"name": "t", "group": "auto"})
        assert_openai_error(refused, 400, "group")
        await served.admin.patch("/api/groups/vip", json={"auto_rank": 1})
        made = await c.post("/api/tokens", json={"name": "t", "group": "auto"})
        assert made.status_code == 201 and made.json()["group"] == "auto"


# Prices a token sees


async def cheap_model(served: Served) -> str:
    """A model at $0.000001 per 1M tokens (1,000 nano-USD): calls cost
    fractions of a nano-USD before the one rounding."""
    got = await served.admin.post(
        "/api/models",
        json={
            "id": "penny-1",
            "kind": "text",
            "per_use": {"input_mtok": "0.000001", "output_mtok": "0.000001"},
        },
    )
    assert got.status_code == 201, got.text
    return "penny-1"


async def test_a_token_in_a_group_is_quoted_catalog_times_its_multiplier(served: Served) -> None:
    await new_group(served, "vip", "0.8")
    model = await cheap_model(served)
    account = await account_in(served, "default", "vip")
    key = account["management_key"]
    plain = await served.new_token(key, name="plain")
    vip = await served.new_token(key, name="vip", group="vip")
    # 1000.6 nano-USD at catalog prices: 1001 rounded; x 0.8 exact is 800.48,
    # so 800 (rounding twice, 1001 x 0.8 = 800.8, would say 801). 1000.625 x
    # 0.8 is 800.5 exactly: half up, 801.
    for tokens, catalog_nano, vip_nano in ((1_000_600, 1001, 800), (1_000_625, 1001, 801)):
        usage = {"model": model, "input_tokens": tokens}
        at_catalog = await quote(served, key, token_id=plain["id"], **usage)
        priced = await quote(served, key, token_id=vip["id"], **usage)
        assert at_catalog["group"] == "default" and at_catalog["multiplier"] == "1"
        assert priced["group"] == "vip" and priced["multiplier"] == "0.8"
        assert usd_to_nano(at_catalog["cost_usd"]) == catalog_nano
        assert usd_to_nano(priced["cost_usd"]) == vip_nano
        exact = exact_nano([line["cost_usd"] for line in at_catalog["breakdown"]])
        assert usd_to_nano(priced["cost_usd"]) == half_up(exact * Fraction(4, 5))
        # the lines are x 0.8 too, exact: they add up to the cost before rounding
        assert exact_nano([line["cost_usd"] for line in priced["breakdown"]]) == exact * Fraction(
            4, 5
        )
        assert priced["breakdown"][0]["unit_price_usd"] == "0.0000008"
    # by mode alone: catalog prices
    by_mode = await quote(served, key, billing_mode="pay_per_use", model="gpt-4o", input_tokens=12)
    assert by_mode["group"] is None and by_mode["multiplier"] == "1"
    # from a request body too
    body = {"model": "gpt-4o", "messages": HELLO, "max_tokens": 100}
    at_catalog = await quote(served, key, model="gpt-4o", token_id=plain["id"], request=body)
    priced = await quote(served, key, model="gpt-4o", token_id=vip["id"], request=body)
    exact = exact_nano([line["cost_usd"] for line in at_catalog["breakdown"]])
    assert usd_to_nano(priced["cost_usd"]) == half_up(exact * Fraction(4, 5))


async def test_models_with_a_token_show_its_groups_prices(served: Served) -> None:
    await new_group(served, "vip", "0.8")
    account = await account_in(served, "vip")
    key = account["management_key"]
    vip = await served.new_token(key, name="vip", group="vip", billing_mode="pay_per_call")
    async with served.client(key) as c:
        catalog = {m["id"]: m for m in (await c.get("/api/models")).json()["data"]}
        seen = (await c.get("/api/models", params={"token_id": vip["id"]})).json()["data"]
    seen_by_id = {m["id"]: m for m in seen}
    assert seen_by_id.keys() == catalog.keys()
    gpt4o, dalle = seen_by_id["gpt-4o"], seen_by_id["dall-e-3"]
    assert gpt4o["group"] == "vip" and gpt4o["multiplier"] == "0.8"
    assert "group" not in catalog["gpt-4o"]
    for name, price in catalog["gpt-4o"]["per_use"].items():
        expected = scaled_nano(usd_to_nano(price), Fraction(4, 5))
        assert usd_to_nano(gpt4o["per_use"][name]) == expected, name
    assert usd_to_nano(dalle["per_call"]["price"]) == scaled_nano(
        usd_to_nano(catalog["dall-e-3"]["per_call"]["price"]), Fraction(4, 5)
    )
    for variant, price in catalog["dall-e-3"]["per_call"]["variants"].items():
        assert Decimal(dalle["per_call"]["variants"][variant]) == Decimal(price) * Decimal("0.8")
    assert dalle["billing"]["method"] == "per_call"
    image = seen_by_id["gpt-image-1"]["image_estimates"][0]
    plain_image = catalog["gpt-image-1"]["image_estimates"][0]
    assert image["output_tokens"] == plain_image["output_tokens"]
    assert Decimal(image["cost_usd"]) < Decimal(plain_image["cost_usd"])


async def test_auto_prices_where_the_call_would_go(served: Served, simulator: Simulator) -> None:
    await new_group(served, "cheap", "0.5", auto_rank=1)
    await new_group(served, "std", "0.9", auto_rank=2)
    account = await account_in(served, "cheap", "std")
    key = account["management_key"]
    token = await served.new_token(key, name="auto", group="auto")
    channel = {
        "type": "openai",
        "base_url": simulator.base_url,
        "api_key": "sim-key",
        "models": ["*"],
    }
    made = await served.admin.post(
        "/api/channels", json={**channel, "name": "s", "groups": ["std"]}
    )
    assert made.status_code == 201, made.text
    usage = {"model": "gpt-4o", "token_id": token["id"], "input_tokens": 12, "output_tokens": 9}
    got = await quote(served, key, **usage)
    assert got["group"] == "std" and got["cost_usd"] == "0.0001755"  # 0.000195 x 0.9
    made = await served.admin.post(
        "/api/channels", json={**channel, "name": "c", "groups": ["cheap"]}
    )
    assert made.status_code == 201, made.text
    got = await quote(served, key, **usage)
    assert got["group"] == "cheap" and got["cost_usd"] == "0.0000975"
    async with served.client(key) as c:
        seen = (await c.get("/api/models", params={"token_id": token["id"]})).json()["data"]
    assert {m["id"]: m for m in seen}["gpt-4o"]["multiplier"] == "0.5"


async def test_a_call_is_billed_and_recorded_in_its_group(
    served: Served, simulator: Simulator
) -> None:
    await new_group(served, "vip", "0.8")
    channel = {
        "name": "vip",
        "type": "openai",
        "base_url": simulator.base_url,
        "api_key": "sim-key",
        "models": ["*"],
        "groups": ["vip"],
    }
    assert (await served.admin.post("/api/channels", json=channel)).status_code == 201
    account = await account_in(served, "default", "vip")
    key = account["management_key"]
    token = await served.new_token(key, name="vip", group="vip")
    async with sdk(served, token["key"]) as client:
        await client.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=20)
    async with served.client(key) as c:
        record = (await c.get("/api/usage")).json()["data"][0]
    assert record["group"] == "vip" and record["multiplier"] == "0.8"
    model = served.gw.state.catalog.resolve("gpt-4o")
    usage = Usage(**{name: record["tokens"][name] or 0 for name in TOKEN_CLASSES})
    charged = bill(model, BillingMethod.PER_USE, usage, Fraction(4, 5)).total_nano
    assert usd_to_nano(record["cost_usd"]) == charged
    # the advisor replays it at the token's prices: what it was billed
    report = await advise_token(served.gw, account["id"], token["id"])
    outcomes = {o.mode: o for o in report.outcomes}
    assert outcomes[BillingMode.PAY_PER_USE_PRIORITY].cost_nano == report.billed_nano == charged
    # out of the account's groups: refused, and quoted as refused
    got = await served.admin.patch(f"/api/users/{account['id']}", json={"groups": ["default"]})
    assert got.status_code == 200
    answer = await quote(served, key, model="gpt-4o", token_id=token["id"], input_tokens=1)
    assert answer["refused"]["code"] == "group_not_allowed" and answer["cost_usd"] is None
    async with served.client(token["key"]) as c:
        got = await c.post(
            "/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, "max_tokens": 5}
        )
    assert_openai_error(got, 403)
    assert got.json()["error"]["code"] == "group_not_allowed"


def test_the_advisor_replays_at_the_groups_prices() -> None:
    gpt4o = Model(
        "gpt-4o",
        ModelKind.MULTIMODAL,
        "openai",
        per_use=PerUsePrice(usd_to_nano("5"), usd_to_nano("15")),
    )
    tokens = dict.fromkeys(TOKEN_CLASSES, 0)
    tokens.update(input_tokens=12, output_tokens=9)
    records = [{"model": "gpt-4o", "items": 1, "tokens": tokens, "status": "ok"}] * 3
    lookup = {"gpt-4o": gpt4o}.get
    at_catalog = {o.mode: o.cost_nano for o in replay(records, lookup)}
    priced = {o.mode: o.cost_nano for o in replay(records, lookup, lambda _: Fraction(4, 5))}
    assert at_catalog[BillingMode.PAY_PER_USE] == 3 * 195_000
    assert priced[BillingMode.PAY_PER_USE] == 3 * 156_000


# The arithmetic, pure

multipliers = st.integers(1, 1000 * NANO_PER_USD).map(lambda k: Fraction(k, NANO_PER_USD))
prices = st.integers(0, 100 * NANO_PER_USD)
counts = st.integers(0, 10**9)


@given(
    input_price=prices,
    cached_price=prices,
    output_price=prices,
    uncached=counts,
    cached=counts,
    output=counts,
    multiplier=multipliers,
)
def test_per_use_bill_is_the_exact_cost_rounded_half_up_once(
    input_price: int,
    cached_price: int,
    output_price: int,
    uncached: int,
    cached: int,
    output: int,
    multiplier: Fraction,
) -> None:
    model = Model(
        "m",
        ModelKind.TEXT,
        "p",
        per_use=PerUsePrice(input_price, output_price, cached_input_mtok=cached_price),
    )
    usage = Usage(input_tokens=uncached + cached, cached_input_tokens=cached, output_tokens=output)
    exact = (
        Fraction(uncached * input_price + cached * cached_price + output * output_price, 10**6)
        * multiplier
    )
    assert bill(model, BillingMethod.PER_USE, usage, multiplier).total_nano == half_up(exact)


@given(price=prices, items=st.integers(0, 1000), multiplier=multipliers)
def test_per_call_bill_is_the_exact_cost_rounded_half_up_once(
    price: int, items: int, multiplier: Fraction
) -> None:
    model = Model("m", ModelKind.IMAGE, "p", per_call=PerCallPrice(price))
    usage = Usage(items=items)
    expected = half_up(price * items * multiplier)
    assert bill(model, BillingMethod.PER_CALL, usage, multiplier).total_nano == expected


@given(nano=st.integers(-(10**18), 10**18), multiplier=multipliers)
def test_scaled_prices_and_exact_amounts(nano: int, multiplier: Fraction) -> None:
    exact = nano * multiplier
    assert Fraction(Decimal(exact_usd(exact))) * NANO_PER_USD == exact
    if nano >= 0:
        assert scaled_nano(nano, multiplier) == half_up(exact)


def test_exact_usd_examples() -> None:
    assert exact_usd(Fraction(195_000)) == "0.000195"
    assert exact_usd(Fraction(75, 2)) == "0.0000000375"
    assert exact_usd(Fraction(-5 * NANO_PER_USD)) == "-5"
    assert exact_usd(Fraction(0)) == "0"
    assert exact_usd(Fraction(12 * NANO_PER_USD)) == "12"


def test_a_scaled_model_keeps_its_shape() -> None:
    model = Model(
        "m",
        ModelKind.IMAGE,
        "p",
        per_use=PerUsePrice(5, 15, image_output_mtok=40),
        per_call=PerCallPrice(
            40, variants=(("1024x1024/hd", 80), ("1024x1024/standard", 40)), default_variant="x"
        ),
    )
    half = scaled_model(model, Fraction(1, 2))
    assert half.per_use == PerUsePrice(3, 8, image_output_mtok=20)  # 2.5 -> 3, 7.5 -> 8
    assert half.per_call == PerCallPrice(
        20, variants=(("1024x1024/hd", 40), ("1024x1024/standard", 20)), default_variant="x"
    )
    assert scaled_model(model, Fraction(1)) is model
