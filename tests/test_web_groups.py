"""Price groups and margins in the console (tollway.web.groups, .admin, .tokens,
.catalog, .margins): server-side with httpx as the browser (forms, CSRF,
errors on the form, who may), then in a real browser (Playwright driving
Debian's Chromium, as tests/test_web_browser.py: skipped when it is missing,
unless TOLLWAY_REQUIRE_BROWSER=1). With TOLLWAY_SCREENSHOTS=DIR,
test_screenshot writes DIR/groups.png and DIR/margins.png."""

from __future__ import annotations

import html
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from test_web import Browser, chat, new_user, signed_in
from test_web_browser import (
    SCREENSHOTS,
    new_page,
)
from test_web_browser import sign_in as browser_sign_in

from tollway.simulator import Simulator
from tollway.web.margins import totals

from conftest import Served

MODEL = "gpt-4o"


async def post(b: Browser, path: str, form: dict[str, Any], csrf: bool = True) -> Any:
    """A form post with repeated fields (checkboxes), as a browser sends it."""
    return await b.http.post(path, data={"csrf": b.csrf, **form} if csrf else form)


def group_form(**fields: str) -> dict[str, str]:
    return {"name": "vip", "multiplier": "0.8", "description": "", "auto_rank": ""} | fields


async def api_group(s: Served, name: str) -> dict[str, Any]:
    got = await s.admin.get(f"/api/groups/{name}")
    assert got.status_code == 200, got.text
    found: dict[str, Any] = got.json()
    return found


async def add_group(s: Served, name: str, multiplier: str, **fields: Any) -> None:
    got = await s.admin.post("/api/groups", json={"name": name, "multiplier": multiplier, **fields})
    assert got.status_code == 201, got.text


async def set_groups(s: Served, account: dict[str, Any], groups: list[str]) -> None:
    got = await s.admin.patch(f"/api/users/{account['id']}", json={"groups": groups})
    assert got.status_code == 200, got.text


async def api_models(s: Served, **params: Any) -> dict[str, dict[str, Any]]:
    got = await s.admin.get("/api/models", params=params)
    assert got.status_code == 200, got.text
    return {m["id"]: m for m in got.json()["data"]}


def times(price: str, multiplier: str) -> Decimal:
    """A unit price x a multiplier, rounded half up once to a whole nano-USD."""
    exact = Decimal(price) * Decimal(multiplier)
    return exact.quantize(Decimal("0.000000001"), rounding=ROUND_HALF_UP)


def dollars(text: str) -> Decimal:
    """An amount as the console shows it ('$1,234.50', '−$0.25') back to a Decimal."""
    return Decimal(text.strip().replace("−", "-").replace("$", "").replace(",", ""))


def nav(page: Any, name: str) -> Any:
    """A link of the main navigation (pages link to each other in their text too)."""
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def token_id_on(page: str, name: str) -> int:
    found = re.search(rf'data-token-id="(\d+)">\s*<th[^>]*>{re.escape(name)}</th>', page)
    assert found, f"no token {name!r} on the page"
    return int(found.group(1))


# --- server-side: the groups page -------------------------------------------------


async def test_add_and_edit_a_group(web: Served) -> None:
    async with signed_in(web, role="admin") as (b, _):
        page = (await b.get("/admin/groups")).text
        assert 'data-group="default"' in page and "× 1" in page
        assert '<a href="/admin/groups"' in page  # in the admin navigation
        added = await post(b, "/admin/groups", group_form(auto_rank="10", description="partners"))
        assert added.status_code == 303, added.text
        assert "Added group “vip” at × 0.8." in html.unescape((await b.get("/admin/groups")).text)
        vip = await api_group(web, "vip")
        assert (vip["multiplier"], vip["auto_rank"], vip["description"]) == ("0.8", 10, "partners")
        await post(b, "/admin/groups", group_form(name="bulk", multiplier="0.6", auto_rank="2"))
        page = (await b.get("/admin/groups")).text
        # The auto list in its order: bulk (rank 2) first, vip (rank 10) second.
        assert re.search(r'data-group="bulk".*?#1 <span class="muted small">\(rank 2\)', page, re.S)
        assert re.search(r'data-group="vip".*?#2 <span class="muted small">\(rank 10\)', page, re.S)
        assert re.search(r'data-group="default".*?not in it', page, re.S)

        edit = (await b.get("/admin/groups/edit", params={"name": "vip"})).text
        assert 'name="multiplier" value="0.8"' in edit and 'value="partners"' in edit
        form = group_form(multiplier="0.75", auto_rank="", description="")
        saved = await post(b, "/admin/groups/edit?name=vip", form)
        assert saved.status_code == 303, saved.text
        vip = await api_group(web, "vip")
        assert (vip["multiplier"], vip["auto_rank"], vip["description"]) == ("0.75", None, None)
        assert (await b.get("/admin/groups/edit", params={"name": "nope"})).status_code == 404
        gone = await post(b, "/admin/groups/edit?name=nope", group_form())
        assert gone.status_code == 404


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"multiplier": "0.8x"}, "'multiplier' must be a decimal such as \"0.8\""),
        ({"multiplier": "0"}, "'multiplier' must be a decimal such as \"0.8\""),
        ({"multiplier": "1e-3"}, "'multiplier' must be a decimal such as \"0.8\""),
        ({"multiplier": "1001"}, "at most 1000"),
        ({"multiplier": ""}, "'multiplier' must be a decimal"),
        ({"auto_rank": "first"}, "Auto rank: enter a whole number."),
        ({"auto_rank": "-1"}, "auto_rank"),
        ({"name": "auto"}, "'auto' is reserved"),
        ({"name": "no spaces"}, "'name' must be 1 to 64 characters"),
        ({"name": "default"}, "Group 'default' exists"),
    ],
)
async def test_bad_values_show_on_the_form(
    web: Served, fields: dict[str, str], message: str
) -> None:
    async with signed_in(web, role="admin") as (b, _):
        got = await post(b, "/admin/groups", group_form(**fields))
        assert got.status_code == 400, got.text
        assert message in html.unescape(got.text)
        assert "Add a group" in got.text  # the add form again, with what was typed
        assert f'value="{html.escape(fields.get("multiplier", "0.8"))}"' in got.text
        names = [g["name"] for g in (await web.admin.get("/api/groups")).json()["data"]]
        assert names == ["default"]
        if "name" in fields:
            return  # (a group's name is not edited)
        bad = await post(b, "/admin/groups/edit?name=default", group_form(**fields))
        assert bad.status_code == 400 and message in html.unescape(bad.text)
        assert "Edit group “default”" in html.unescape(bad.text)
        assert (await api_group(web, "default"))["multiplier"] == "1"


async def test_csrf_and_who_may(web: Served) -> None:
    async with signed_in(web, role="admin") as (b, _):
        no_csrf = await post(b, "/admin/groups", group_form(), csrf=False)
        assert no_csrf.status_code == 403
        wrong = await post(b, "/admin/groups", group_form() | {"csrf": "forged"}, csrf=False)
        assert wrong.status_code == 403
        edit = await post(b, "/admin/groups/edit?name=default", group_form(), csrf=False)
        assert edit.status_code == 403
        assert [g["name"] for g in (await web.admin.get("/api/groups")).json()["data"]] == [
            "default"
        ]
    async with signed_in(web) as (user, account):
        for path in ("/admin/groups", "/admin/groups/edit?name=default", "/admin/margins"):
            assert (await user.get(path)).status_code == 403, path
        assert 'href="/admin/groups"' not in (await user.get("/tokens")).text
        assert (await post(user, "/admin/groups", group_form())).status_code == 403
        edit = await post(user, "/admin/groups/edit?name=default", group_form(multiplier="9"))
        assert edit.status_code == 403
        got = await post(user, f"/admin/accounts/{account['id']}/groups", {"groups": ["default"]})
        assert got.status_code == 403
    assert (await api_group(web, "default"))["multiplier"] == "1"
    async with Browser(web.base_url) as anonymous:
        got = await anonymous.get("/admin/groups")
        assert got.status_code == 303 and got.headers["location"].startswith("/signin")


# --- server-side: accounts, tokens, models ----------------------------------------


async def test_an_admin_sets_an_accounts_groups(web: Served) -> None:
    await add_group(web, "vip", "0.8")
    carol = await new_user(web)
    async with signed_in(web, role="admin") as (b, _):
        page = (await b.get("/admin/accounts")).text
        row = page.split(f'data-account-id="{carol["id"]}"', 1)[1].split("</tr>", 1)[0]
        assert "<span data-groups>default</span>" in row
        assert 'name="groups" value="vip">' in row and 'value="default" checked' in row
        path = f"/admin/accounts/{carol['id']}/groups"
        got = await post(b, path, {"groups": ["default", "vip"]})
        assert got.status_code == 303 and got.headers["location"] == "/admin/accounts"
        page = html.unescape((await b.get("/admin/accounts")).text)
        assert f"{carol['username']} may use the price groups default, vip." in page
        assert "<span data-groups>default, vip</span>" in page
        me = (await web.admin.get(f"/api/users/{carol['id']}")).json()
        assert me["groups"] == ["default", "vip"]
        for form in ({}, {"groups": ["gold"]}):  # none checked; a group that does not exist
            got = await post(b, path, form)
            assert got.status_code == 303
            page = html.unescape((await b.get("/admin/accounts")).text)
            assert f"Groups of {carol['username']} not changed:" in page
        assert (await web.admin.get(f"/api/users/{carol['id']}")).json()["groups"] == [
            "default",
            "vip",
        ]
        assert (
            await post(b, "/admin/accounts/9999/groups", {"groups": ["vip"]})
        ).status_code == 404
        assert (await post(b, path, {"groups": ["vip"]}, csrf=False)).status_code == 403


async def test_a_token_takes_a_group_of_its_account_or_auto(web: Served) -> None:
    await add_group(web, "vip", "0.8")
    async with signed_in(web) as (b, account):
        page = (await b.get("/tokens")).text
        assert '<option value="default" selected>default — prices × 1</option>' in page
        assert 'value="vip"' not in page and 'value="auto"' not in page
        await set_groups(web, account, ["default", "vip"])
        page = (await b.get("/tokens")).text
        assert '<option value="vip">vip — prices × 0.8</option>' in page
        assert 'value="auto"' not in page  # no group of the account is in the auto list
        made = await b.create_token(name="cheap", group="vip")
        assert made.status_code == 200, made.text
        page = (await b.get("/tokens")).text
        tid = token_id_on(page, "cheap")
        listed = re.search(
            rf'data-token-id="{tid}".*?data-label="Group" data-group>(\w+)<', page, re.S
        )
        assert listed and listed.group(1) == "vip"
        # Forced past the page: the service refuses 'auto', and says why.
        refused = await b.create_token(name="walker", group="auto")
        assert refused.status_code == 400
        assert "is in the operator's auto list, so a token cannot use 'auto'" in html.unescape(
            refused.text
        )
        assert 'value="walker"' in refused.text
        got = await web.admin.patch("/api/groups/vip", json={"auto_rank": 1})
        assert got.status_code == 200, got.text
        page = (await b.get("/tokens")).text
        assert '<option value="auto">auto — the first group' in page
        assert (await b.create_token(name="walker", group="auto")).status_code == 200
        assert token_id_on((await b.get("/tokens")).text, "walker")

        edit = (await b.get(f"/tokens/{tid}")).text
        assert '<option value="vip" selected>' in edit
        form = {"name": "cheap", "billing_mode": "pay_per_use_priority", "quota_usd": "",
                "expires_at": "", "models": ""}  # fmt: skip
        assert (await b.post(f"/tokens/{tid}", form | {"group": "default"})).status_code == 303
        async with web.client(account["management_key"]) as api:
            assert (await api.get(f"/api/tokens/{tid}")).json()["group"] == "default"
        await b.post(f"/tokens/{tid}", form | {"group": "vip"})
        # The account loses vip: the token keeps it (refused) until moved, and other
        # edits still save.
        await set_groups(web, account, ["default"])
        edit = (await b.get(f"/tokens/{tid}")).text
        assert "vip — not one of this account's groups" in html.unescape(edit)
        saved = await b.post(f"/tokens/{tid}", form | {"name": "renamed", "group": "vip"})
        assert saved.status_code == 303, saved.text
        async with web.client(account["management_key"]) as api:
            token = (await api.get(f"/api/tokens/{tid}")).json()
        assert (token["name"], token["group"]) == ("renamed", "vip")
        bad = await b.post(f"/tokens/{tid}", form | {"group": "nope"})
        assert bad.status_code == 400 and "No group 'nope'" in html.unescape(bad.text)


async def test_the_models_page_shows_a_tokens_prices(web: Served) -> None:
    await add_group(web, "vip", "0.8")
    listed = (await api_models(web))[MODEL]["per_use"]
    async with signed_in(web) as (b, account):
        await set_groups(web, account, ["vip"])
        await b.create_token(name="cheap")  # the account's first group: vip
        tid = token_id_on((await b.get("/tokens")).text, "cheap")
        seen = (await api_models(web, token_id=tid))[MODEL]["per_use"]
        page = html.unescape((await b.get("/models", params={"token": tid, "q": MODEL})).text)
        assert 'data-price-group="vip" data-multiplier="0.8"' in page
        assert "price group vip, the catalog's × 0.8" in re.sub(r"<[^>]+>", "", page)
        per_use = r'data-label="Per use" class="num">\$([\d.,]+) / \$([\d.,]+)'
        cell = re.search(rf"<code>{MODEL}</code>.*?{per_use}", page, re.S)
        assert cell
        for shown, name in zip(cell.groups(), ("input_mtok", "output_mtok"), strict=True):
            assert dollars(shown) == times(listed[name], "0.8") == Decimal(seen[name])
        plain = (await b.get("/models", params={"q": MODEL})).text
        assert "data-price-group" not in plain
        assert f"${Decimal(listed['input_mtok']):.2f}" in plain

        # auto: each model in the group its call would take (here vip, the only one listed)
        await web.admin.patch("/api/groups/vip", json={"auto_rank": 1})
        await b.create_token(name="walker", group="auto")
        walker = token_id_on((await b.get("/tokens")).text, "walker")
        page = html.unescape((await b.get("/models", params={"token": walker, "q": MODEL})).text)
        assert 'data-price-group="auto"' in page and "<strong>vip</strong> × 0.8" in page
        in_vip = r'data-label="Group"[^>]*>vip <span class="muted small">× 0.8</span>'
        assert re.search(in_vip, page)

        # The account loses the token's group: catalog prices, and why its calls are refused.
        await set_groups(web, account, ["default"])
        got = await b.get("/models", params={"token": tid, "q": MODEL})
        assert got.status_code == 200
        page = html.unescape(got.text)
        assert "data-price-group-refused" in page and "'vip' is not one its account may use" in page
        assert f"${Decimal(listed['input_mtok']):.2f}" in page


# --- server-side: margins ---------------------------------------------------------


async def half_cost_channel(s: Served, simulator: Simulator) -> dict[str, Any]:
    """A channel that costs half the catalog's prices, tried before "sim"."""
    got = await s.admin.post(
        "/api/channels",
        json={"name": "half-cost", "type": "openai", "base_url": simulator.base_url,
              "api_key": "sim-key", "models": ["*"], "priority": 10,
              "cost": {"multiplier": "0.5"}},
    )  # fmt: skip
    assert got.status_code == 201, got.text
    channel: dict[str, Any] = got.json()
    return channel


async def api_margins(s: Served, by: str) -> list[dict[str, Any]]:
    got = await s.admin.get("/api/usage/margins", params={"by": by})
    assert got.status_code == 200, got.text
    rows: list[dict[str, Any]] = got.json()["data"]
    return rows


async def test_the_margins_page_shows_the_services_numbers(
    web: Served, simulator: Simulator
) -> None:
    channel = await half_cost_channel(web, simulator)
    account = await new_user(web)
    token = await web.new_token(account["management_key"])
    for _ in range(2):
        assert (await chat(web, token["key"])).status_code == 200
    (row,) = await api_margins(web, "channel")
    assert row["channel"] == channel["id"] and row["calls_with_cost"] == 2
    async with signed_in(web, role="admin") as (b, _):
        page = (await b.get("/admin/margins")).text
        assert '<a href="/admin/margins"' in page
        shown = page.split(f'data-channel="{channel["id"]}"', 1)[1].split("</tr>", 1)[0]
        assert "half-cost" in shown
        for attr, key in (("revenue", "revenue_usd"), ("cost", "upstream_cost_usd"),
                          ("margin", "margin_usd")):  # fmt: skip
            cell = re.search(rf"data-{attr}>(?:<span[^>]*>)?([^<]+)<", shown)
            assert cell and dollars(html.unescape(cell.group(1))) == Decimal(row[key]), attr
        assert re.search(r"data-calls>2<", shown) and re.search(r"data-calls-with-cost>2<", shown)
        (by_model,) = await api_margins(web, "model")
        assert f'data-model="{MODEL}"' in page and by_model["model"] == MODEL
        total = re.search(r"data-total-margin>([^<]+)<", page)
        assert total and dollars(html.unescape(total.group(1))) == Decimal(by_model["margin_usd"])
        assert Decimal(row["margin_usd"]) == Decimal(row["revenue_usd"]) - Decimal(
            row["upstream_cost_usd"]
        )
        # A past period: nothing; a reversed one: explained.
        old = await b.get("/admin/margins", params={"since": "2020-01-01", "until": "2020-01-31"})
        assert old.status_code == 200 and old.text.count("No billed calls in this period.") == 2
        bad = await b.get("/admin/margins", params={"since": "2030-01-02", "until": "2030-01-01"})
        assert bad.status_code == 400 and "on or before Until" in bad.text
        assert (await b.get("/admin/margins", params={"since": "soon"})).status_code == 400


def test_totals_add_up_exactly() -> None:
    rows = [
        {"calls": 3, "calls_with_cost": 2, "revenue_usd": "0.1", "upstream_cost_usd": "0.2",
         "margin_usd": "-0.1"},
        {"calls": 1, "calls_with_cost": 0, "revenue_usd": "0.000000001", "upstream_cost_usd": "0",
         "margin_usd": "0"},
    ]  # fmt: skip
    assert totals(rows) == {
        "calls": 4,
        "calls_with_cost": 2,
        "revenue_usd": Decimal("0.100000001"),
        "upstream_cost_usd": Decimal("0.2"),
        "margin_usd": Decimal("-0.1"),
    }
    assert totals([])["margin_usd"] == 0


# --- in a browser -----------------------------------------------------------------


async def test_a_group_at_0_8_reaches_the_models_page(browser: Any, web: Served) -> None:
    admin, user = await new_user(web, role="admin"), await new_user(web)
    page = await new_page(browser, web)
    await browser_sign_in(page, admin["username"])
    await nav(page, "Groups").click()
    await page.get_by_role("button", name="Add group").first.click()
    add = page.locator("#add")
    await add.get_by_label("Name").fill("vip")
    await add.get_by_label("Multiplier").fill("0.8")
    await add.get_by_label("Description").fill("partners")
    await add.get_by_role("button", name="Add group").click()
    await page.get_by_text("Added group “vip” at × 0.8.").wait_for()
    row = page.locator('tr[data-group="vip"]')
    assert "× 0.8" in await row.inner_text() and "not in it" in await row.inner_text()

    await nav(page, "Accounts").click()
    account_row = page.locator(f'tr[data-account-id="{user["id"]}"]')
    await account_row.locator("summary", has_text="Change").click()
    await account_row.get_by_label("vip").check()
    await account_row.get_by_label("default").uncheck()
    await account_row.get_by_role("button", name="Set groups").click()
    await page.get_by_text(f"{user['username']} may use the price groups vip.").wait_for()
    assert await account_row.locator("[data-groups]").inner_text() == "vip"

    mine = await new_page(browser, web)
    await browser_sign_in(mine, user["username"])
    await mine.get_by_role("button", name="Create token").click()
    group = mine.get_by_label("Price group")
    assert await group.input_value() == "vip"
    assert await group.locator("option").all_inner_texts() == ["vip — prices × 0.8"]
    await mine.get_by_label("Name").fill("partner app")
    await mine.get_by_role("button", name="Save").click()
    await mine.get_by_role("heading", name="Token “partner app” created").wait_for()
    await nav(mine, "Tokens").click()
    token_row = mine.get_by_role("row").filter(has_text="partner app")
    assert await token_row.locator("[data-group]").inner_text() == "vip"

    await nav(mine, "Models").click()
    await mine.get_by_label("Search").fill(MODEL)
    await mine.get_by_label("Or token").select_option(label="partner app · Pay-per-Use Priority")
    note = mine.locator("[data-price-group]")
    await note.wait_for()
    assert "price group vip, the catalog's × 0.8" in await note.inner_text()
    listed = (await api_models(web))[MODEL]["per_use"]
    exactly = mine.locator("code", has_text=re.compile(f"^{re.escape(MODEL)}$"))
    model_row = mine.get_by_role("row").filter(has=exactly)
    shown = await model_row.locator('td[data-label="Per use"]').inner_text()
    input_usd, output_usd = (dollars(p) for p in shown.split("\n")[0].split("/"))
    assert input_usd == times(listed["input_mtok"], "0.8")
    assert output_usd == times(listed["output_mtok"], "0.8")


async def test_the_margins_page_in_a_browser(
    browser: Any, web: Served, simulator: Simulator
) -> None:
    channel = await half_cost_channel(web, simulator)
    account = await new_user(web)
    token = await web.new_token(account["management_key"])
    assert (await chat(web, token["key"])).status_code == 200
    rows = {r["channel"]: r for r in await api_margins(web, "channel")}
    want = rows[channel["id"]]
    admin = await new_user(web, role="admin")
    page = await new_page(browser, web)
    await browser_sign_in(page, admin["username"])
    await nav(page, "Margins").click()
    await page.get_by_role("heading", name="By channel").wait_for()
    row = page.locator(f'#by-channel tr[data-channel="{channel["id"]}"]')
    assert await row.locator("th").inner_text() == "half-cost"
    for attr, key in (("revenue", "revenue_usd"), ("cost", "upstream_cost_usd"),
                      ("margin", "margin_usd")):  # fmt: skip
        assert dollars(await row.locator(f"[data-{attr}]").inner_text()) == Decimal(want[key])
    assert Decimal(want["upstream_cost_usd"]) > 0
    assert await row.locator("[data-calls-with-cost]").inner_text() == "1"
    since = await page.get_by_label("Since (UTC)").input_value()
    until = await page.get_by_label("Until (UTC)").input_value()
    assert (date.fromisoformat(until) - date.fromisoformat(since)).days == 29


@pytest.mark.skipif(not SCREENSHOTS, reason="set TOLLWAY_SCREENSHOTS=DIR to write screenshots")
async def test_screenshot(browser: Any, web: Served, simulator: Simulator) -> None:
    await add_group(web, "wholesale", "0.6", auto_rank=1, description="Volume resellers")
    await add_group(web, "vip", "0.8", auto_rank=2, description="Partners and early customers")
    await add_group(web, "premium", "1.25", description="Dedicated capacity")
    await half_cost_channel(web, simulator)
    account = await new_user(web)
    token = await web.new_token(account["management_key"])
    for model in (MODEL, MODEL, "gpt-4o-mini", "claude-3-5-sonnet-20241022"):
        assert (await chat(web, token["key"], model=model)).status_code == 200
    admin = await new_user(web, role="admin")
    page = await new_page(browser, web)
    await browser_sign_in(page, admin["username"])
    Path(str(SCREENSHOTS)).mkdir(parents=True, exist_ok=True)
    await page.goto("/admin/groups")
    await page.screenshot(path=str(Path(str(SCREENSHOTS)) / "groups.png"), full_page=True)
    await page.goto("/admin/margins")
    await page.screenshot(path=str(Path(str(SCREENSHOTS)) / "margins.png"), full_page=True)
