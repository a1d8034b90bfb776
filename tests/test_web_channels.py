"""The console's channels page (tollway.web.channels): server-side with httpx
as the browser (forms, errors, keys never shown back), then in a real
browser (Playwright driving Debian's Chromium, as tests/test_web_browser.py:
skipped when it is missing, unless TOLLWAY_REQUIRE_BROWSER=1). With
TOLLWAY_SCREENSHOTS=DIR, test_screenshot writes DIR/channels.png."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_web import Browser, chat, new_user, signed_in
from test_web_browser import (
    PHONE,
    SCREENSHOTS,
    new_page,
    sign_in,
)

from tollway.routing.status import disable_key
from tollway.simulator import Simulator, SimulatorConfig, start

from conftest import Served

SECRET_KEYS = ("sk-first-upstream-1111", "sk-second-upstream-2222")


def channel_form(**fields: str) -> dict[str, Any]:
    """The add/edit form as a browser posts it (checkboxes: lists)."""
    form: dict[str, Any] = {
        "name": "two-keys",
        "type": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "api_keys": "\n".join(SECRET_KEYS),
        "key_strategy": "round_robin",
        "models": "gpt-4o, gpt-4o-mini",
        "model_mapping": "gpt-4o=gpt-4o-2024-08-06\n\n",
        "priority": "-1",
        "weight": "2",
        "groups": ["default"],
        "methods": ["per_use"],
        "cost_multiplier": "0.8",
    }
    return form | fields


async def api_channel(s: Served, name: str) -> dict[str, Any]:
    channels = (await s.admin.get("/api/channels")).json()["data"]
    found: dict[str, Any] = next(c for c in channels if c["name"] == name)
    return found


async def post(b: Browser, path: str, form: dict[str, Any]) -> Any:
    """A form post with repeated fields (checkboxes), as a browser sends it."""
    return await b.http.post(path, data={"csrf": b.csrf, **form})


# --- server-side ------------------------------------------------------------------


async def test_add_edit_and_keys_never_shown_back(web: Served) -> None:
    async with signed_in(web, role="admin") as (b, _):
        added = await post(b, "/admin/channels", channel_form())
        assert added.status_code == 303, added.text
        page = (await b.get("/admin/channels")).text
        assert "Added channel “two-keys”" in html.unescape(page)
        assert "...1111" in page and "...2222" in page and "2 of 2 enabled" in page
        assert not any(key in page for key in SECRET_KEYS)
        made = await api_channel(web, "two-keys")
        assert made["model_mapping"] == {"gpt-4o": "gpt-4o-2024-08-06"}
        assert (made["priority"], made["weight"], made["methods"]) == (-1, 2, ["per_use"])
        assert made["cost"] == {"multiplier": "0.8"} and made["models"] == ["gpt-4o", "gpt-4o-mini"]

        edit = (await b.get(f"/admin/channels/{made['id']}")).text
        assert not any(key in edit for key in SECRET_KEYS)
        assert re.search(r'name="api_keys"[^>]*></textarea>', edit)
        assert "gpt-4o=gpt-4o-2024-08-06</textarea>" in edit
        # Empty key box: the keys stay; blank multiplier: no cost; unchecked per_use.
        form = channel_form(api_keys="", weight="5", cost_multiplier="", model_mapping="")
        saved = await post(b, f"/admin/channels/{made['id']}", form | {"methods": ["per_call"]})
        assert saved.status_code == 303, saved.text
        edited = await api_channel(web, "two-keys")
        assert [k["hint"] for k in edited["keys"]] == ["...1111", "...2222"]
        assert (edited["weight"], edited["methods"], edited["cost"]) == (5, ["per_call"], None)
        assert edited["model_mapping"] == {}
        form = channel_form(api_keys="sk-replacement-key-3333")
        assert (await post(b, f"/admin/channels/{made['id']}", form)).status_code == 303
        assert [k["hint"] for k in (await api_channel(web, "two-keys"))["keys"]] == ["...3333"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"groups": ["vip"]}, "Unknown groups: vip"),
        ({"groups": []}, "'groups' must be a non-empty list"),
        ({"methods": []}, "'methods' must be a non-empty list"),
        ({"model_mapping": "gpt-4o"}, "catalog-id=upstream-name"),
        ({"priority": "high"}, "Priority: enter a whole number"),
        ({"cost_multiplier": "-1"}, "cost.multiplier"),
        ({"api_keys": ""}, "'api_keys' must be a list of 1 to 100 keys"),
        ({"base_url": "ftp://x"}, "must start with http"),
        ({"type": "nope"}, "Unknown channel type"),
        ({"key_strategy": "first"}, "'key_strategy' must be one of"),
    ],
)
async def test_bad_fields_show_on_the_form(
    web: Served, fields: dict[str, Any], message: str
) -> None:
    async with signed_in(web, role="admin") as (b, _):
        got = await post(b, "/admin/channels", channel_form(**fields))
        assert got.status_code == 400, got.text
        assert message in html.unescape(got.text)
        assert not any(key in got.text for key in SECRET_KEYS)  # keys are not echoed
        assert 'value="two-keys"' in got.text  # the rest is kept
        names = [c["name"] for c in (await web.admin.get("/api/channels")).json()["data"]]
        assert names == ["sim"]
        if fields == {"api_keys": ""}:
            return  # (on the edit page, an empty key box keeps the keys)
        sim = await api_channel(web, "sim")
        edit = channel_form(**{"name": "sim", "base_url": sim["base_url"], **fields})
        bad = await post(b, f"/admin/channels/{sim['id']}", edit)
        assert bad.status_code == 400 and message in html.unescape(bad.text)
        assert "Edit channel" in bad.text and not any(key in bad.text for key in SECRET_KEYS)
        assert await api_channel(web, "sim") == sim


async def test_cost_prices_from_the_api_stay_when_the_multiplier_is_blank(web: Served) -> None:
    prices = {"gpt-4o": {"per_use": {"input_mtok": "2", "output_mtok": "8"}}}
    sim = await api_channel(web, "sim")
    got = await web.admin.patch(f"/api/channels/{sim['id']}", json={"cost": {"prices": prices}})
    assert got.status_code == 200, got.text
    async with signed_in(web, role="admin") as (b, _):
        assert (
            "Blank keeps its own prices for gpt-4o"
            in (await b.get(f"/admin/channels/{sim['id']}")).text
        )
        form = channel_form(name="sim", api_keys="", cost_multiplier="", base_url=sim["base_url"])
        assert (await post(b, f"/admin/channels/{sim['id']}", form)).status_code == 303
        assert (await api_channel(web, "sim"))["cost"]["prices"]["gpt-4o"]["per_use"]


async def test_test_enable_disable_delete_and_who_may(web: Served) -> None:
    sim = await api_channel(web, "sim")
    async with signed_in(web, role="admin") as (b, _):
        got = await b.post(f"/admin/channels/{sim['id']}/test", {"back": "edit"})
        assert got.status_code == 303 and got.headers["location"] == f"/admin/channels/{sim['id']}"
        page = html.unescape((await b.get(got.headers["location"])).text)
        assert re.search(r"Test of “sim” ok: HTTP 200 in [\d.]+ ms \([\w.-]+\)\.", page)
        got = await b.post(f"/admin/channels/{sim['id']}/test", {"model": "nope"})
        assert got.headers["location"] == "/admin/channels"
        page = html.unescape((await b.get("/admin/channels")).text)
        assert "Could not test “sim”: No model 'nope' in the catalog." in page
        await b.post(f"/admin/channels/{sim['id']}/enabled", {"enabled": "0"})
        assert (await api_channel(web, "sim"))["status"] == "disabled"
        page = (await b.get("/admin/channels")).text
        assert 'data-status="disabled"' in page and "disabled by an admin" in page
        await b.post(f"/admin/channels/{sim['id']}/enabled", {"enabled": "1"})
        assert (await api_channel(web, "sim"))["status"] == "enabled"
        assert (await b.get("/admin/channels/999")).status_code == 404
        assert (await b.post("/admin/channels/999/test", {})).status_code == 404
        no_csrf = await b.post(f"/admin/channels/{sim['id']}/delete", {}, csrf=False)
        assert no_csrf.status_code == 403
        await b.post(f"/admin/channels/{sim['id']}/delete", {})
        assert (await web.admin.get("/api/channels")).json()["data"] == []
    async with signed_in(web) as (user, _):
        for path in ("/admin/channels", "/admin/channels/1"):
            assert (await user.get(path)).status_code == 403
        assert (await user.post("/admin/channels/1/test", {})).status_code == 403


# --- in a browser -----------------------------------------------------------------


@pytest.fixture
async def rejecting_simulator() -> AsyncIterator[Simulator]:
    """An upstream that knows another key than the channel's."""
    sim = await start(SimulatorConfig(api_key="other"))
    yield sim
    await sim.stop()


async def admin_page(browser: Any, web: Served, viewport: dict[str, int] | None = None) -> Any:
    admin = await new_user(web, role="admin")
    page = await (new_page(browser, web, viewport) if viewport else new_page(browser, web))
    await sign_in(page, admin["username"])
    await page.get_by_role("link", name="Channels").click()
    return page


def row_of(page: Any, name: str) -> Any:
    return page.locator("tr[data-channel-id]").filter(
        has=page.locator("th", has_text=re.compile(f"^{re.escape(name)}\\b"))
    )


async def test_add_a_channel_with_two_keys_then_disable_edit_delete(
    browser: Any, web: Served
) -> None:
    page = await admin_page(browser, web)
    await page.get_by_role("button", name="Add channel").first.click()
    add = page.locator("#add")
    await add.get_by_label("Name").fill("two-keys")
    await add.get_by_label("Base URL").fill("http://127.0.0.1:9/v1")
    await add.get_by_label("API keys").fill("\n".join(SECRET_KEYS))
    await add.get_by_label("Models", exact=True).fill("gpt-4o gpt-4o-mini")
    await add.get_by_label("Model mapping").fill("gpt-4o=gpt-4o-2024-08-06")
    await add.get_by_label("Priority").fill("5")
    await add.get_by_label("Weight").fill("3")
    await add.get_by_label("per-call").uncheck()
    await add.get_by_label("Cost multiplier").fill("0.75")
    await add.get_by_role("button", name="Add channel").click()
    await page.get_by_text("Added channel “two-keys”").wait_for()
    row = row_of(page, "two-keys")
    text = await row.inner_text()
    assert "...1111" in text and "...2222" in text and "2 of 2 enabled" in text
    assert "5\nweight 3" in text and "per-use" in text and "per-call" not in text
    content = await page.content()
    assert not any(key in content for key in SECRET_KEYS)
    made = await api_channel(web, "two-keys")
    assert made["cost"] == {"multiplier": "0.75"} and made["methods"] == ["per_use"]

    await row.get_by_role("button", name="Disable").click()
    await page.get_by_text("Channel “two-keys” is disabled.").wait_for()
    assert await row.locator("[data-status]").inner_text() == "disabled"
    assert "disabled by an admin" in await row.inner_text()
    await row.get_by_role("button", name="Enable").click()
    await page.get_by_text("Channel “two-keys” is enabled.").wait_for()
    assert await row.locator("[data-status]").inner_text() == "enabled"

    await row.get_by_role("button", name="Edit").click()
    assert await page.get_by_label("API keys").input_value() == ""
    assert await page.get_by_label("Model mapping").input_value() == "gpt-4o=gpt-4o-2024-08-06"
    await page.get_by_label("Weight").fill("9")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_text("Saved channel “two-keys”").wait_for()
    edited = await api_channel(web, "two-keys")
    assert edited["weight"] == 9 and [k["hint"] for k in edited["keys"]] == ["...1111", "...2222"]

    page.once("dialog", lambda dialog: dialog.accept())
    await row_of(page, "two-keys").get_by_role("button", name="Delete").click()
    await page.get_by_text("Deleted channel “two-keys”.").wait_for()
    assert await row_of(page, "two-keys").count() == 0


async def test_a_rejected_key_auto_disables_the_channel_and_test_tells(
    browser: Any, web: Served, rejecting_simulator: Simulator
) -> None:
    got = await web.admin.post(
        "/api/channels",
        json={"name": "rejected", "type": "openai", "base_url": rejecting_simulator.base_url,
              "api_key": "sk-the-wrong-key-9999", "models": ["*"], "priority": 10},
    )  # fmt: skip
    assert got.status_code == 201, got.text
    account = await new_user(web)
    token = await web.new_token(account["management_key"])
    served = await chat(web, token["key"])  # tried on "rejected" first, then "sim"
    assert served.status_code == 200, served.text
    for _ in range(50):  # the key's refusal is written down in the background
        rejected = await api_channel(web, "rejected")
        if rejected["status"] == "auto_disabled":
            break
        await asyncio.sleep(0.05)
    assert rejected["status"] == "auto_disabled"

    page = await admin_page(browser, web)
    row = row_of(page, "rejected")
    assert await row.locator("[data-status]").inner_text() == "auto_disabled"
    reason = await row.locator("[data-status-reason]").inner_text()
    assert reason == rejected["status_reason"] and reason
    keys = await row.locator("ul.keys").inner_text()
    assert "...9999" in keys and "disabled" in keys and reason in keys
    assert "0 of 1 enabled" in await row.inner_text()

    await row.get_by_role("button", name="Test").click()
    failed = page.locator(".flash.error").filter(has_text="Test of “rejected” failed: HTTP 401")
    await failed.wait_for()
    await row_of(page, "sim").get_by_role("button", name="Test").click()
    passed = page.locator(".flash.ok").filter(has_text=re.compile(r"Test of “sim” ok: HTTP 200"))
    await passed.wait_for()
    assert await row_of(page, "rejected").locator("[data-status]").inner_text() == "auto_disabled"


async def test_the_page_fits_a_phone(browser: Any, web: Served) -> None:
    sim = await api_channel(web, "sim")
    await disable_key(web.gw, sim["id"], 0, "Incorrect API key provided: sk-sim***. " * 4)
    page = await admin_page(browser, web, PHONE)
    for path in ("/admin/channels", f"/admin/channels/{sim['id']}"):
        await page.goto(path)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at phone width"


@pytest.mark.skipif(not SCREENSHOTS, reason="set TOLLWAY_SCREENSHOTS=DIR to write screenshots")
async def test_screenshot(browser: Any, web: Served, rejecting_simulator: Simulator) -> None:
    for fields in (
        {"name": "openai-backup", "base_url": "https://api.openai.com/v1",
         "api_keys": ["sk-proj-aaaaaaaa7f3c", "sk-proj-bbbbbbbb91d0"], "models": ["gpt-4o"],
         "priority": -1, "weight": 2, "methods": ["per_use"], "cost": {"multiplier": "0.9"}},
        {"name": "old-account", "base_url": rejecting_simulator.base_url,
         "api_key": "sk-expired-key-4b21", "models": ["*"], "priority": 10},
    ):  # fmt: skip
        got = await web.admin.post("/api/channels", json={"type": "openai", **fields})
        assert got.status_code == 201, got.text
    account = await new_user(web)
    token = await web.new_token(account["management_key"])
    for _ in range(3):
        assert (await chat(web, token["key"])).status_code == 200
    page = await admin_page(browser, web)
    await row_of(page, "sim").get_by_role("button", name="Test").click()
    await page.locator(".flash.ok").wait_for()
    Path(str(SCREENSHOTS)).mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(Path(str(SCREENSHOTS)) / "channels.png"), full_page=True)
