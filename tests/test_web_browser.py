"""The web console in a real browser: Playwright driving Debian's Chromium
(/usr/bin/chromium) against the gateway served on loopback.

Skips when Playwright or Chromium is missing, unless TOLLWAY_REQUIRE_BROWSER=1
(set by .ci/run), which makes a missing browser a failure. Never downloads a
browser. With TOLLWAY_SCREENSHOTS=DIR, test_screenshots also writes the
README's screenshots to DIR.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from test_web import PASSWORD, chat, new_user

from tollway.billing.pricing import bill
from tollway.db.schema import usage_records
from tollway.timeutil import utcnow
from tollway.types import BillingMethod, Model, Usage

from conftest import Served

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = os.environ.get("TOLLWAY_SCREENSHOTS")


async def new_page(browser: Any, web: Served, viewport: dict[str, int] = DESKTOP) -> Any:
    context = await browser.new_context(
        base_url=web.base_url, viewport=viewport, permissions=["clipboard-read", "clipboard-write"]
    )
    context.set_default_timeout(10_000)
    return await context.new_page()


async def sign_in(page: Any, username: str) -> None:
    await page.goto("/signin")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/tokens")


async def create_token(page: Any, name: str) -> str:
    """Through the form, with the preselected mode; returns the key shown once."""
    await page.get_by_role("link", name="Tokens").click()
    await page.get_by_role("button", name="Create token").click()
    await page.get_by_label("Name").fill(name)
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("heading", name=f"Token “{name}” created").wait_for()
    key: str = await page.locator("#new-key").input_value()
    return key


async def api_token(web: Served, account: dict[str, Any], name: str) -> dict[str, Any]:
    async with web.client(account["management_key"]) as c:
        tokens = (await c.get("/api/tokens")).json()["data"]
    found: dict[str, Any] = next(t for t in tokens if t["name"] == name)
    return found


async def test_create_with_the_default_mode_then_edit_to_pay_per_call(
    browser: Any, web: Served
) -> None:
    account = await new_user(web)
    page = await new_page(browser, web)
    await sign_in(page, account["username"])
    await page.get_by_role("button", name="Create token").click()
    mode = page.get_by_label("Billing mode")
    assert await mode.input_value() == "pay_per_use_priority"
    selected = await mode.locator("option:checked").inner_text()
    assert "Pay-per-Use Priority (recommended)" in selected
    assert await mode.locator("option").count() == 5
    await page.get_by_label("Name").fill("browser app")
    await page.get_by_role("button", name="Save").click()
    key = await page.locator("#new-key").input_value()
    assert key.startswith("sk-")
    await page.get_by_role("button", name="Copy key").click()
    assert await page.evaluate("navigator.clipboard.readText()") == key
    token = await api_token(web, account, "browser app")
    assert token["billing_mode"] == "pay_per_use_priority"
    assert (await chat(web, key)).status_code == 200

    await page.get_by_role("link", name="Tokens").click()
    row = page.get_by_role("row").filter(has_text="browser app")
    await row.get_by_role("button", name="Edit").click()
    await page.get_by_label("Billing mode").select_option("pay_per_call")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_text("Saved token “browser app”.").wait_for()
    assert "Pay-per-Call" in await row.inner_text()
    assert (await api_token(web, account, "browser app"))["billing_mode"] == "pay_per_call"
    refused = await chat(web, key)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "billing_mode_mismatch"


async def test_hybrid_cannot_be_chosen(browser: Any, web: Served) -> None:
    account = await new_user(web)
    page = await new_page(browser, web)
    await sign_in(page, account["username"])
    hybrid = page.locator("#billing_mode option[value=hybrid]")
    assert await hybrid.is_disabled()
    assert "not applicable" in await hybrid.inner_text()
    with pytest.raises(Exception, match=r"not enabled|disabled|Timeout"):
        await page.get_by_label("Billing mode").select_option("hybrid", timeout=1500)
    assert await page.get_by_label("Billing mode").input_value() == "pay_per_use_priority"
    # Forcing it past the page (a tampered form) is refused by the server, too.
    await page.evaluate(
        "() => { const o = document.querySelector('#billing_mode option[value=hybrid]');"
        " o.disabled = false; o.selected = true; }"
    )
    await page.get_by_label("Name").fill("forced")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("alert").filter(has_text="not applicable").wait_for()
    async with web.client(account["management_key"]) as c:
        assert (await c.get("/api/tokens")).json()["data"] == []


async def test_usage_chart_renders_with_data(browser: Any, web: Served) -> None:
    account = await new_user(web)
    token = await web.new_token(account["management_key"], name="charted")
    for model in ("gpt-4o", "gpt-4o", "claude-3-5-sonnet-20241022"):
        assert (await chat(web, token["key"], model=model)).status_code == 200
    page = await new_page(browser, web)
    await sign_in(page, account["username"])
    await page.get_by_role("link", name="Usage").click()
    chart = page.get_by_role("img", name="Spend per day by model")
    await chart.wait_for()
    bars = page.locator("svg[data-chart] rect.bar")
    assert await bars.count() == 2  # today: one segment per model
    for i in range(2):
        box = await bars.nth(i).bounding_box()
        assert box is not None and box["height"] > 0 and box["width"] > 0
    legend = await page.locator(".legend").inner_text()
    assert "gpt-4o" in legend and "claude-3-5-sonnet-20241022" in legend
    assert await page.get_by_role("cell", name="charted").count() == 3


async def test_a_user_cannot_see_another_users_tokens_or_usage(browser: Any, web: Served) -> None:
    alice, bob = await new_user(web), await new_user(web)
    alice_page = await new_page(browser, web)
    await sign_in(alice_page, alice["username"])
    key = await create_token(alice_page, "alice private")
    assert (await chat(web, key)).status_code == 200
    token = await api_token(web, alice, "alice private")

    bob_page = await new_page(browser, web)
    await sign_in(bob_page, bob["username"])
    assert "alice private" not in await bob_page.content()
    answer = await bob_page.goto(f"/tokens/{token['id']}")
    assert answer.status == 404
    assert "alice private" not in await bob_page.content()
    answer = await bob_page.goto(f"/usage?token={token['id']}")
    assert answer.status == 404
    await bob_page.goto("/usage")
    assert await bob_page.get_by_text("No calls yet.").count() == 1
    assert await bob_page.locator("svg[data-chart]").count() == 0
    async with web.client(bob["management_key"]) as c:
        assert (await c.get(f"/api/tokens/{token['id']}")).status_code == 404
        assert (await c.get("/api/usage", params={"token_id": token["id"]})).json()["data"] == []


async def test_pages_fit_a_phone(browser: Any, web: Served) -> None:
    account = await new_user(web)
    await web.new_token(account["management_key"], name="phone token")
    page = await new_page(browser, web, PHONE)
    await sign_in(page, account["username"])
    for path in ("/tokens", "/models", "/usage", "/advisor", "/account"):
        await page.goto(path)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at phone width"
    await page.goto("/tokens")
    assert await page.get_by_role("link", name="Tokens").is_visible()
    edit = page.get_by_role("row").filter(has_text="phone token").get_by_role("button", name="Edit")
    assert await edit.is_visible()


# --- screenshots for the README (TOLLWAY_SCREENSHOTS=docs/screenshots) ----------


async def _seed_history(web: Served, account: dict[str, Any], token_id: int) -> None:
    """Two weeks of made-up usage priced as the gateway would, so the chart has
    days to show (screenshots only)."""
    mix = [
        ("gpt-4o", 40),
        ("claude-3-5-sonnet-20241022", 25),
        ("gpt-4o-mini", 80),
        ("flux-1.1-pro", 3),
    ]
    rows = []
    now = utcnow()
    for day in range(13, 0, -1):
        for model_id, calls in mix:
            model = web.gw.state.catalog.resolve(model_id)
            for i in range((calls * (3 + (day * 7 + len(model_id)) % 5)) // 6, 0, -1):
                rows.append(
                    _record(account["id"], token_id, model, now - timedelta(days=day, minutes=i))
                )
    async with web.gw.engine.begin() as conn:
        await conn.execute(insert(usage_records), rows)


def _record(account_id: int, token_id: int, model: Model, at: Any) -> dict[str, Any]:
    per_call = model.per_use is None
    usage = Usage(items=1) if per_call else Usage(input_tokens=1200, output_tokens=400)
    method = BillingMethod.PER_CALL if per_call else BillingMethod.PER_USE
    return {
        "request_id": secrets.token_hex(8),
        "created_at": at,
        "account_id": account_id,
        "token_id": token_id,
        "model": model.id,
        "endpoint": "images" if per_call else "chat",
        "billing_mode": "pay_per_use_priority",
        "method": method.value,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "items": 1,
        "unit_prices": {},
        "cost_nano": bill(model, method, usage).total_nano,
        "usage_source": "upstream",
        "status": "ok",
    }


async def _shoot(page: Any, name: str, full_page: bool = True) -> None:
    assert SCREENSHOTS
    await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=full_page)


@pytest.mark.skipif(not SCREENSHOTS, reason="set TOLLWAY_SCREENSHOTS=DIR to write screenshots")
async def test_screenshots(browser: Any, web: Served) -> None:
    Path(str(SCREENSHOTS)).mkdir(parents=True, exist_ok=True)
    admin = await new_user(web, role="admin", credit="25")
    for name, mode in (
        ("production app", None),
        ("image studio", "pay_per_call"),
        ("batch jobs", "pay_per_use"),
    ):
        fields = {"name": name} | ({"billing_mode": mode} if mode else {})
        token = await web.new_token(admin["management_key"], **fields)
        if name == "production app":
            first = token
    await _seed_history(web, admin, first["id"])
    for _ in range(3):
        await chat(web, first["key"])
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = await new_page(browser, web, viewport)
        await page.goto("/signin")
        await _shoot(page, f"signin-{label}", full_page=False)
        await sign_in(page, admin["username"])
        await page.get_by_role("button", name="Create token").click()
        await page.get_by_label("Name").fill("mobile app")
        await _shoot(page, f"tokens-{label}")
        await page.goto("/usage")
        if label == "phone":
            await page.locator("#chart-h").scroll_into_view_if_needed()
        await _shoot(page, f"usage-{label}", full_page=False)
        if label == "desktop":
            await page.goto("/tokens")
            await page.get_by_role("button", name="Create token").click()
            await page.get_by_label("Name").fill("new service")
            await page.get_by_role("button", name="Save").click()
            await _shoot(page, "key-shown-once-desktop")
            await page.goto("/models?mode=pay_per_call&kind=image")
            await _shoot(page, "models-desktop", full_page=False)
            await page.goto(f"/advisor?token={first['id']}")
            await _shoot(page, "advisor-desktop")
            await page.goto("/admin/accounts")
            await _shoot(page, "admin-accounts-desktop")
