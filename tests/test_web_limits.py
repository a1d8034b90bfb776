"""Rate limits and budgets in the console (tollway.web.tokens, .admin, .forms):
server-side with httpx as the browser (form posts, errors on the form, an
unchanged token or account after a bad value), then in a real browser
(Playwright driving Debian's Chromium, as tests/test_web_browser.py), ending
with real calls through the openai SDK: the budget use the page shows is the
API's, and a call past the token's requests a minute gets a 429. With
TOLLWAY_SCREENSHOTS=DIR, test_screenshot writes DIR/tokens-limits.png."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path
from typing import Any

import openai
import pytest
from test_web import Browser, api_tokens, key_on, new_user, signed_in
from test_web_browser import SCREENSHOTS, new_page
from test_web_browser import sign_in as browser_sign_in

from tollway.web import forms
from tollway.web.render import usd

from conftest import Served, sdk

LIMITED = {
    "rpm_limit": "60",
    "tpm_limit": "90000",
    "max_concurrent": "4",
    "budget_usd": "5",
    "budget_period": "day",
}
NO_LIMITS = {name: "" for name in forms.LIMIT_FORM_FIELDS} | {"budget_period": "month"}


def token_form(**fields: str) -> dict[str, str]:
    """The token form as a browser posts it, without limits unless given."""
    base = {"name": "app", "billing_mode": "pay_per_use_priority", "group": "default"}
    return base | {"quota_usd": "", "expires_at": "", "models": ""} | NO_LIMITS | fields


async def api_token(s: Served, account: dict[str, Any], token_id: int) -> dict[str, Any]:
    async with s.client(account["management_key"]) as c:
        got = await c.get(f"/api/tokens/{token_id}")
    assert got.status_code == 200, got.text
    token: dict[str, Any] = got.json()
    return token


async def api_account(s: Served, account_id: int) -> dict[str, Any]:
    got = await s.admin.get(f"/api/users/{account_id}")
    assert got.status_code == 200, got.text
    view: dict[str, Any] = got.json()
    return view


def limit_fields(view: dict[str, Any]) -> dict[str, Any]:
    names = ("rpm_limit", "tpm_limit", "max_concurrent", "budget_usd", "budget_period")
    return {name: view[name] for name in names}


def row_of(page: str, attribute: str, row_id: int) -> str:
    found = re.search(rf'<tr {attribute}="{row_id}">(.*?)</tr>', page, re.S)
    assert found, f"no row {attribute}={row_id}"
    return html.unescape(found.group(1))


def text_of(markup: str) -> str:
    """Markup's text, its whitespace runs as one space (what a reader sees)."""
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


async def chat(s: Served, key: str) -> Any:
    async with sdk(s, key) as client:
        return await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20
        )


# --- the form helper --------------------------------------------------------------


@pytest.mark.parametrize(("text", "number"), [("", None), ("  ", None), ("60", 60), (" 7 ", 7)])
def test_a_blank_limit_is_none_else_a_whole_number(text: str, number: int | None) -> None:
    assert forms.optional_whole_number(text, "Requests a minute", "rpm_limit") == number


def test_form_limits_as_the_services_take_them() -> None:
    assert forms.limits(LIMITED) == {
        "rpm_limit": 60,
        "tpm_limit": 90000,
        "max_concurrent": 4,
        "budget_nano": 5_000_000_000,
        "budget_period": "day",
    }
    lifted = {"rpm_limit": None, "tpm_limit": None, "max_concurrent": None, "budget_nano": None}
    assert forms.limits(NO_LIMITS) == lifted


# --- server-side ------------------------------------------------------------------


async def test_create_a_token_with_limits_and_a_budget(web: Served) -> None:
    async with signed_in(web) as (b, account):
        got = await b.post("/tokens", token_form(name="limited", **LIMITED))
        assert got.status_code == 200, got.text
        [token] = await api_tokens(web, account)
        assert limit_fields(token) == {
            "rpm_limit": 60,
            "tpm_limit": 90000,
            "max_concurrent": 4,
            "budget_usd": "5",
            "budget_period": "day",
        }
        await b.post("/tokens", token_form(name="open"))
        [_, unlimited] = await api_tokens(web, account)
        assert unlimited["rpm_limit"] is None and unlimited["budget_usd"] is None
        page = (await b.get("/tokens")).text
    row = row_of(page, "data-token-id", token["id"])
    assert "60 rpm · 90k tpm · 4 at once" in text_of(row)
    assert "$0.00 of $5.00 today" in text_of(row) and "<meter" in row
    assert f"resets {token['budget_resets_at'][:10]} 00:00" in row
    plain = row_of(page, "data-token-id", unlimited["id"])
    assert re.search(r"<span data-limits>—</span>", plain)
    assert re.search(r"<span data-budget>—</span>", plain)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rpm_limit": "many"}, "Requests a minute: enter a whole number"),
        ({"tpm_limit": "1.5"}, "Tokens a minute: enter a whole number"),
        ({"max_concurrent": "0"}, "'max_concurrent' must be a whole number from 1"),
        ({"rpm_limit": "-3"}, "'rpm_limit' must be a whole number from 1"),
        ({"budget_usd": "lots"}, "Budget: enter an amount in USD"),
        ({"budget_usd": "-1"}, "'budget_usd' must be an amount from 0"),
        ({"budget_usd": "5", "budget_period": "year"}, "'budget_period' must be one of"),
    ],
)
async def test_bad_limits_are_explained_and_create_nothing(
    web: Served, fields: dict[str, str], message: str
) -> None:
    async with signed_in(web) as (b, account):
        got = await b.post("/tokens", token_form(**fields))
        assert got.status_code == 400
        assert message in html.unescape(got.text) and 'role="alert"' in got.text
        assert await api_tokens(web, account) == []
        for name, value in fields.items():  # the form keeps what was typed
            assert f'name="{name}" value="{value}"' in got.text or name == "budget_period"


async def test_edit_sets_lifts_and_refuses_limits(web: Served) -> None:
    async with signed_in(web) as (b, account):
        await b.post("/tokens", token_form(name="edited"))
        [token] = await api_tokens(web, account)
        edit = (await b.get(f"/tokens/{token['id']}")).text
        assert 'name="rpm_limit" value=""' in edit
        saved = await b.post(f"/tokens/{token['id']}", token_form(name="edited", **LIMITED))
        assert saved.status_code == 303, saved.text
        token = await api_token(web, account, token["id"])
        assert (token["rpm_limit"], token["budget_usd"], token["budget_period"]) == (60, "5", "day")
        edit = (await b.get(f"/tokens/{token['id']}")).text
        assert 'name="tpm_limit" value="90000"' in edit and 'name="budget_usd" value="5"' in edit
        assert "Budget: $0.00 of $5.00 today" in text_of(html.unescape(edit))
        assert re.search(r'<option value="day" selected>', edit)

        bad = token_form(name="renamed", **(LIMITED | {"rpm_limit": "10", "tpm_limit": "x"}))
        refused = await b.post(f"/tokens/{token['id']}", bad)
        assert refused.status_code == 400
        assert "Tokens a minute: enter a whole number" in html.unescape(refused.text)
        assert await api_token(web, account, token["id"]) == token

        lifted = await b.post(f"/tokens/{token['id']}", token_form(name="edited"))
        assert lifted.status_code == 303
        token = await api_token(web, account, token["id"])
        assert limit_fields(token) == dict.fromkeys(limit_fields(token))


async def test_admin_sets_an_accounts_limits_and_budget(web: Served) -> None:
    user = await new_user(web)
    async with signed_in(web, role="admin") as (b, _):
        path = f"/admin/accounts/{user['id']}/limits"
        got = await b.post(path, LIMITED | {"budget_usd": "100", "budget_period": "month"})
        assert got.status_code == 303, got.text
        view = await api_account(web, user["id"])
        assert limit_fields(view) == {
            "rpm_limit": 60,
            "tpm_limit": 90000,
            "max_concurrent": 4,
            "budget_usd": "100",
            "budget_period": "month",
        }
        page = (await b.get("/admin/accounts")).text
        row = row_of(page, "data-account-id", user["id"])
        assert "60 rpm · 90k tpm · 4 at once" in text_of(row)
        assert "$0.00 of $100.00 this month" in text_of(row)
        assert "Set the limits and budget of" in html.unescape(page)

        refused = await b.post(path, NO_LIMITS | {"max_concurrent": "none please"})
        assert refused.status_code == 303
        page = html.unescape((await b.get("/admin/accounts")).text)
        assert "not changed: Calls at once: enter a whole number" in page
        assert await api_account(web, user["id"]) == view

        await b.post(path, NO_LIMITS)
        assert limit_fields(await api_account(web, user["id"])) == dict.fromkeys(limit_fields(view))


async def test_only_admins_set_account_limits(web: Served) -> None:
    async with signed_in(web) as (b, account):
        got = await b.post(f"/admin/accounts/{account['id']}/limits", LIMITED)
        assert got.status_code == 403
    assert (await api_account(web, account["id"]))["rpm_limit"] is None


# --- in Chromium, then real calls --------------------------------------------------


async def fill_limits(scope: Any, values: dict[str, str]) -> None:
    labels = {
        "rpm_limit": "Requests a minute",
        "tpm_limit": "Tokens a minute",
        "max_concurrent": "Calls at once",
        "budget_usd": "Budget (USD)",
    }
    for name, label in labels.items():
        if name in values:
            await scope.get_by_label(label).fill(values[name])
    if "budget_period" in values:
        await scope.get_by_label("Per", exact=True).select_option(values["budget_period"])


async def budget_shown_is_the_apis(
    page: Any, web: Served, account: dict[str, Any], tid: int
) -> str:
    """What the tokens page shows as used once it agrees with the API read
    just before and after it (a lease's spending is folded in the background)."""
    cell = page.locator(f'tr[data-token-id="{tid}"] [data-budget]')
    for _ in range(50):
        before = (await api_token(web, account, tid))["budget_used_usd"]
        await page.goto("/tokens")
        shown = await cell.inner_text()
        after = (await api_token(web, account, tid))["budget_used_usd"]
        if before == after and shown.startswith(f"{usd(after)} of "):
            return str(after)
        await asyncio.sleep(0.1)
    pytest.fail(f"the page shows {shown!r}, the API {after!r}")


async def test_limits_and_budget_in_the_browser_then_real_calls(browser: Any, web: Served) -> None:
    account = await new_user(web)
    page = await new_page(browser, web)
    await browser_sign_in(page, account["username"])
    await page.get_by_role("button", name="Create token").click()
    await page.get_by_label("Name").fill("limited app")
    await fill_limits(page, {"rpm_limit": "3", "tpm_limit": "90000", "max_concurrent": "4"})
    await fill_limits(page, {"budget_usd": "2.5", "budget_period": "day"})
    await page.get_by_role("button", name="Save").click()
    key = await page.locator("#new-key").input_value()
    [token] = await api_tokens(web, account)
    await page.get_by_role("link", name="Tokens").click()
    row = page.locator(f'tr[data-token-id="{token["id"]}"]')
    assert await row.locator("[data-limits]").inner_text() == "3 rpm · 90k tpm · 4 at once"
    assert await row.locator("[data-budget]").inner_text() == "$0.00 of $2.50 today"
    assert await row.locator("meter.budget").is_visible()

    # A bad value is shown on the form and changes nothing.
    await row.get_by_role("button", name="Edit").click()
    assert await page.get_by_label("Requests a minute").input_value() == "3"
    assert await page.get_by_label("Per", exact=True).input_value() == "day"
    await fill_limits(page, {"rpm_limit": "2", "max_concurrent": "zero"})
    await page.get_by_role("button", name="Save").click()
    await (
        page.get_by_role("alert").filter(has_text="Calls at once: enter a whole number").wait_for()
    )
    assert await api_token(web, account, token["id"]) == token
    # The form kept what was typed: fix it and save.
    await fill_limits(page, {"max_concurrent": "", "budget_usd": "3", "budget_period": "week"})
    await page.get_by_role("button", name="Save").click()
    await page.get_by_text("Saved token “limited app”.").wait_for()
    assert await row.locator("[data-limits]").inner_text() == "2 rpm · 90k tpm"
    assert await row.locator("[data-budget]").inner_text() == "$0.00 of $3.00 this week"
    token = await api_token(web, account, token["id"])
    assert (token["rpm_limit"], token["max_concurrent"], token["budget_usd"]) == (2, None, "3")

    # Real calls: the use shown is the API's; the third in a minute gets a 429.
    for _ in range(2):
        await chat(web, key)
    with pytest.raises(openai.RateLimitError) as refused:
        await chat(web, key)
    assert refused.value.code == "rate_limit_exceeded"
    used = await budget_shown_is_the_apis(page, web, account, token["id"])
    assert used != "0"
    await page.context.close()


async def test_admin_sets_an_account_limit_and_budget_in_the_browser(
    browser: Any, web: Served
) -> None:
    user = await new_user(web)
    admin = await new_user(web, role="admin")
    page = await new_page(browser, web)
    await browser_sign_in(page, admin["username"])
    await page.goto("/admin/accounts")
    row = page.locator(f'tr[data-account-id="{user["id"]}"]')
    assert await row.locator("[data-limits]").inner_text() == "—"
    await row.get_by_text("Edit the limits and budget").click()
    await fill_limits(row, {"rpm_limit": "120", "budget_usd": "40", "budget_period": "week"})
    await row.get_by_role("button", name="Set limits and budget").click()
    await page.get_by_role("status").filter(has_text="Set the limits and budget").wait_for()
    assert await row.locator("[data-limits]").inner_text() == "120 rpm"
    assert await row.locator("[data-budget]").inner_text() == "$0.00 of $40.00 this week"
    view = await api_account(web, user["id"])
    assert (view["rpm_limit"], view["budget_usd"], view["budget_period"]) == (120, "40", "week")

    await row.get_by_text("Edit the limits and budget").click()
    await fill_limits(row, {"tpm_limit": "lots"})
    await row.get_by_role("button", name="Set limits and budget").click()
    await page.get_by_role("alert").filter(has_text="Tokens a minute: enter").wait_for()
    assert await api_account(web, user["id"]) == view
    await page.context.close()


@pytest.mark.skipif(not SCREENSHOTS, reason="set TOLLWAY_SCREENSHOTS=DIR to write screenshots")
async def test_screenshot(browser: Any, web: Served) -> None:
    Path(str(SCREENSHOTS)).mkdir(parents=True, exist_ok=True)
    account = await new_user(web, credit="25")
    async with Browser(web.base_url) as b:
        await b.sign_in(account["username"])
        await b.post("/tokens", token_form(name="production app", **LIMITED))
        small = {"rpm_limit": "20", "budget_usd": "0.01", "budget_period": "month"}
        made = await b.post("/tokens", token_form(name="nightly batch", **small))
        await b.post("/tokens", token_form(name="internal tools"))
    for _ in range(3):
        await chat(web, key_on(made.text))
    page = await new_page(browser, web)
    await browser_sign_in(page, account["username"])
    await page.screenshot(path=str(Path(str(SCREENSHOTS)) / "tokens-limits.png"), full_page=True)
    await page.context.close()
