"""Admin → Audit in the console (tollway.web.audit): the entries an admin's
changes wrote, through the console's own forms or the API, newest first,
filtered by action prefix and target, up to a limit; admins only.
Server-side with httpx as the browser, then in Debian's Chromium."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from test_web import Browser, new_user, signed_in
from test_web_browser import new_page
from test_web_browser import sign_in as browser_sign_in

from tollway.web.audit import compact

from conftest import Served


def rows_of(page: str) -> list[str]:
    return re.findall(r"<tr data-audit-id=\"\d+\">(.*?)</tr>", page, re.S)


def cell(row: str, name: str) -> str:
    found = re.search(rf"data-{name}>(.*?)</td>", row, re.S)
    assert found, f"no {name} in the row"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


async def test_a_credit_through_the_console_is_listed(web: Served) -> None:
    carol = await new_user(web, credit="0")
    target = f"account:{carol['id']}"
    async with signed_in(web, role="admin") as (b, admin):
        page = (await b.get("/admin/audit")).text
        assert '<a href="/admin/audit"' in page  # in the admin navigation
        credit = {"amount_usd": "12.50", "reason": "invoice 7"}
        done = await b.post(f"/admin/accounts/{carol['id']}/credit", credit)
        assert done.status_code == 303, done.text
        page = (await b.get("/admin/audit")).text
        newest = rows_of(page)[0]
        assert cell(newest, "actor") == f"{admin['username']} (admin)"
        assert (cell(newest, "action"), cell(newest, "target")) == ("account.credit", target)
        detail = json.loads(cell(newest, "detail"))
        assert detail == {"amount_usd": "12.5", "reason": "invoice 7"}
        assert ", " not in cell(newest, "detail")  # compact

        # The filters: an action's prefix, an exact target, a limit.
        await web.admin.patch(f"/api/users/{carol['id']}", json={"rpm_limit": 9})
        only = rows_of((await b.get("/admin/audit", params={"target": target})).text)
        actions = [cell(r, "action") for r in only]
        assert actions == ["account.limits", "account.credit", "account.create"]
        assert cell(only[0], "actor") == "admin (admin)"  # the API's admin key
        credits = (await b.get("/admin/audit", params={"action": "account.cred"})).text
        assert {cell(r, "action") for r in rows_of(credits)} == {"account.credit"}
        assert 'name="action" value="account.cred"' in credits
        one = await b.get("/admin/audit", params={"target": target, "limit": "1"})
        assert [cell(r, "action") for r in rows_of(one.text)] == ["account.limits"]
        none = await b.get("/admin/audit", params={"target": "account:999999"})
        assert rows_of(none.text) == [] and "No entries match these filters." in none.text
        # The links in a row filter by its action or target.
        assert f'href="/admin/audit?target=account%3A{carol["id"]}&amp;limit=100"' in page


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("0", "Limit: enter a number from 1 to 500."),
        ("501", "Limit: enter a number from 1 to 500."),
        ("many", "Limit: enter a whole number."),
    ],
)
async def test_a_bad_limit_is_explained(web: Served, limit: str, message: str) -> None:
    async with signed_in(web, role="admin") as (b, _):
        got = await b.get("/admin/audit", params={"limit": limit})
        assert got.status_code == 400 and message in got.text


async def test_only_admins_see_the_log(web: Served) -> None:
    async with signed_in(web) as (user, _):
        assert (await user.get("/admin/audit")).status_code == 403
        assert 'href="/admin/audit"' not in (await user.get("/tokens")).text
    async with Browser(web.base_url) as anonymous:
        got = await anonymous.get("/admin/audit")
        assert got.status_code == 303 and got.headers["location"].startswith("/signin")


@pytest.mark.parametrize(
    ("detail", "shown"),
    [
        (None, ""),
        ({"amount_usd": "1.5", "reason": "té"}, '{"amount_usd":"1.5","reason":"té"}'),
        ({"b": 1, "a": [1, 2]}, '{"b":1,"a":[1,2]}'),  # in the order the change wrote them
    ],
)
def test_compact_detail(detail: dict[str, Any] | None, shown: str) -> None:
    assert compact(detail) == shown


async def test_the_audit_page_in_a_browser(browser: Any, web: Served) -> None:
    carol = await new_user(web, credit="3")  # credited through the API
    admin = await new_user(web, role="admin")
    page = await new_page(browser, web)
    await browser_sign_in(page, admin["username"])
    main = page.get_by_role("navigation", name="Main")
    await main.get_by_role("link", name="Audit", exact=True).click()
    await page.get_by_role("heading", name="Audit log").wait_for()
    await page.get_by_label("Action starts with").fill("account.credit")
    await page.get_by_label("Target").fill(f"account:{carol['id']}")
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url("**/admin/audit?*")
    rows = page.locator("tr[data-audit-id]")
    assert await rows.count() == 1
    assert await rows.locator("[data-actor]").inner_text() == "admin (admin)"
    assert json.loads(await rows.locator("[data-detail]").inner_text()) == {
        "amount_usd": "3",
        "reason": "test",
    }

    user = await new_page(browser, web)
    await browser_sign_in(user, carol["username"])
    got = await user.goto("/admin/audit")
    assert got is not None and got.status == 403
    assert await user.get_by_role("link", name="Audit", exact=True).count() == 0
