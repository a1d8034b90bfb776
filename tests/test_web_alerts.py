"""Alerts in the console (tollway.web.alerts): an account's webhooks, added
through the form (the secret shown once), refused at 400 with the field named,
enabled, disabled, deleted, each with its events as the real scanner and
sender wrote them (a receiver on loopback, and a port that refuses); another
account's webhook is a 404. Server-side with httpx as the browser, then in
Debian's Chromium (Playwright, as tests/test_web_browser.py)."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from test_web import Browser, new_user, signed_in
from test_web_browser import new_page
from test_web_browser import sign_in as browser_sign_in

from tollway.alerts.delivery import deliver_due
from tollway.alerts.scanner import scan
from tollway.errors import ApiError
from tollway.web.alerts import payload_summary, status_counts, thresholds

from conftest import Served, free_port

HOOK_URL = "https://hooks.example/tollway"


def hook_form(**fields: Any) -> dict[str, Any]:
    return {
        "url": HOOK_URL,
        "events": ["budget.threshold", "balance.low"],
        "thresholds": "50, 80, 100",
        "low_balance_usd": "",
    } | fields


async def post(b: Browser, path: str, form: dict[str, Any], csrf: bool = True) -> httpx.Response:
    """A form post with repeated fields (the event checkboxes), as a browser sends it."""
    return await b.http.post(path, data={"csrf": b.csrf, **form} if csrf else form)


async def api_hooks(s: Served, account: dict[str, Any]) -> list[dict[str, Any]]:
    async with s.client(account["management_key"]) as c:
        got = await c.get("/api/webhooks")
    assert got.status_code == 200, got.text
    hooks: list[dict[str, Any]] = got.json()["data"]
    return hooks


async def api_hook(s: Served, account: dict[str, Any], **body: Any) -> dict[str, Any]:
    async with s.client(account["management_key"]) as c:
        got = await c.post("/api/webhooks", json={"url": HOOK_URL, **body})
    assert got.status_code == 201, got.text
    hook: dict[str, Any] = got.json()
    return hook


def row_of(page: str, webhook_id: int) -> str:
    return page.split(f'data-webhook-id="{webhook_id}"', 1)[1].split("</tr>", 1)[0]


class Receiver:
    """An endpoint on loopback that answers 200 to every POST."""

    def __init__(self) -> None:
        self.got = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        self.got += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def receiver_url() -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        Receiver(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}/hook"
    server.should_exit = True
    await task


async def scan_and_send(s: Served) -> None:
    """What every process does each TOLLWAY_ALERTS_EVERY_S: write due events, send them."""
    await scan(s.gw)
    async with httpx.AsyncClient() as client:
        await deliver_due(s.gw, client)


# --- server-side ------------------------------------------------------------------


async def test_add_a_webhook_its_secret_shown_once(web: Served) -> None:
    async with signed_in(web) as (b, account):
        page = (await b.get("/alerts")).text
        assert '<a href="/alerts"' in page  # in the main navigation
        assert "No webhooks yet." in page
        # The defaults: both events checked, 50, 80, 100.
        assert page.count('name="events" value=') == 2 and page.count(" checked>") == 2
        assert 'name="thresholds" value="50, 80, 100"' in page
        form = hook_form(events=["budget.threshold"], thresholds="90%, 75", low_balance_usd="$2.5")
        made = await post(b, "/alerts", form)
        assert made.status_code == 200, made.text
        assert made.headers["cache-control"] == "no-store"
        found = re.search(r'id="new-secret" class="mono" value="(whsec_[^"]+)"', made.text)
        assert found, "the secret is not on the page"
        (hook,) = await api_hooks(web, account)
        assert (hook["url"], hook["events"], hook["thresholds"]) == (
            HOOK_URL,
            ["budget.threshold"],
            [75, 90],
        )
        assert hook["low_balance_usd"] == "2.5" and hook["enabled"] is True
        page = (await b.get("/alerts")).text
        assert found.group(1) not in page  # shown that once
        row = row_of(page, hook["id"])
        assert "<code>https://hooks.example/tollway</code>" in row
        assert "data-events>budget.threshold<" in row and "data-thresholds>75, 90 %<" in row
        assert "data-low-balance>$2.50<" in row and ">active<" in row
        assert re.search(r"data-delivered>0<.*data-pending>0<.*data-failed>0<", row)
        # Thresholds left blank take the service's default.
        assert (await post(b, "/alerts", hook_form(thresholds=""))).status_code == 200
        assert [h["thresholds"] for h in await api_hooks(web, account)][1] == [50, 80, 100]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://hooks.example/x"}, "'url' must be an http or https URL."),
        ({"url": "hooks.example/x"}, "'url' must be an http or https URL."),
        ({"url": ""}, "'url' must be 1 to 2000 characters."),
        ({"url": "https://x.example/" + "a" * 2000}, "'url' must be 1 to 2000 characters."),
        ({"events": []}, "'events' must list some of: budget.threshold, balance.low."),
        ({"events": ["budget.threshold", "spend.high"]}, "'events' must list some of"),
        ({"thresholds": "50, lots"}, "Thresholds: enter a whole number."),
        ({"thresholds": "0, 50"}, "'thresholds' must be a whole number from 1 to 1000."),
        ({"thresholds": "1001"}, "'thresholds' must be a whole number from 1 to 1000."),
        ({"thresholds": "1 2 3 4 5 6 7 8 9 10 11"}, "'thresholds' must be a list of 1 to 10"),
        ({"low_balance_usd": "five"}, "Low balance: enter an amount in USD"),
        ({"low_balance_usd": "-5"}, "'low_balance_usd' must be an amount in USD or null."),
    ],
)
async def test_bad_values_show_on_the_form_and_add_nothing(
    web: Served, fields: dict[str, Any], message: str
) -> None:
    async with signed_in(web) as (b, account):
        await b.get("/alerts")
        got = await post(b, "/alerts", hook_form(**fields))
        assert got.status_code == 400, got.text
        assert message in html.unescape(got.text)
        assert "Add a webhook" in got.text and "new-secret" not in got.text
        typed = hook_form(**fields)
        assert f'name="thresholds" value="{html.escape(typed["thresholds"])}"' in got.text
        assert f'name="url" value="{html.escape(typed["url"])}"' in got.text
        assert await api_hooks(web, account) == []


async def test_disable_enable_delete_and_csrf(web: Served) -> None:
    async with signed_in(web) as (b, account):
        hook = await api_hook(web, account)
        await b.get("/alerts")
        off = await post(b, f"/alerts/{hook['id']}/enabled", {"enabled": "0"})
        assert off.status_code == 303 and off.headers["location"] == "/alerts"
        page = html.unescape((await b.get("/alerts")).text)
        assert f"The webhook to {HOOK_URL} is disabled" in page
        assert ">disabled<" in row_of(page, hook["id"]) and ">Enable</button>" in page
        assert (await api_hooks(web, account))[0]["enabled"] is False
        # From the webhook's own page, back to it.
        on = await post(b, f"/alerts/{hook['id']}/enabled", {"enabled": "1", "back": "webhook"})
        assert on.status_code == 303 and on.headers["location"] == f"/alerts/{hook['id']}"
        assert (await api_hooks(web, account))[0]["enabled"] is True

        forged = await post(b, f"/alerts/{hook['id']}/delete", {"csrf": "forged"}, csrf=False)
        assert forged.status_code == 403
        assert (await post(b, "/alerts", hook_form(), csrf=False)).status_code == 403
        assert len(await api_hooks(web, account)) == 1
        gone = await post(b, f"/alerts/{hook['id']}/delete", {})
        assert gone.status_code == 303 and gone.headers["location"] == "/alerts"
        assert f"Deleted the webhook to {HOOK_URL}" in html.unescape((await b.get("/alerts")).text)
        assert await api_hooks(web, account) == []
        assert (await b.get(f"/alerts/{hook['id']}")).status_code == 404
        assert (await post(b, f"/alerts/{hook['id']}/delete", {})).status_code == 404
    async with Browser(web.base_url) as anonymous:
        got = await anonymous.get("/alerts")
        assert got.status_code == 303 and got.headers["location"].startswith("/signin")


async def test_a_user_cannot_reach_another_accounts_webhook(web: Served) -> None:
    owner = await new_user(web)
    hook = await api_hook(web, owner)
    async with signed_in(web) as (b, _):
        assert hook["url"] not in (await b.get("/alerts")).text
        assert (await b.get(f"/alerts/{hook['id']}")).status_code == 404
        enabled = await post(b, f"/alerts/{hook['id']}/enabled", {"enabled": "0"})
        assert enabled.status_code == 404
        assert (await post(b, f"/alerts/{hook['id']}/delete", {})).status_code == 404
    (still,) = await api_hooks(web, owner)
    assert still["enabled"] is True


async def test_a_webhooks_page_lists_its_events(web: Served, receiver_url: str) -> None:
    async with signed_in(web) as (b, account):  # credited $10: below a $20 low mark
        heard = await api_hook(web, account, url=receiver_url, low_balance_usd="20")
        refused = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
        deaf = await api_hook(web, account, url=refused, low_balance_usd="20")
        await scan_and_send(web)
        page = (await b.get(f"/alerts/{heard['id']}")).text
        assert "1 delivered · 0 pending · 0 failed" in page
        event = page.split("data-event-id=", 1)[1].split("</tr>", 1)[0]
        assert "<code>balance.low</code>" in event
        assert "balance $10.00, below $20.00" in event
        assert '"low_balance_usd":"20"' in html.unescape(event)  # the whole payload, compact
        assert re.search(r'data-event-status><span class="badge good">delivered<', event)
        assert "data-attempts>1<" in event and "data-last-error>—<" in event

        page = (await b.get(f"/alerts/{deaf['id']}")).text
        event = page.split("data-event-id=", 1)[1].split("</tr>", 1)[0]
        assert re.search(r'data-event-status><span class="badge ">pending<', event)
        assert "data-attempts>1<" in event and "ConnectError" in event  # retried later
        listed = (await b.get("/alerts")).text
        counts = r"data-delivered>{}<.*data-pending>{}<.*data-failed>{}<"
        assert re.search(counts.format(1, 0, 0), row_of(listed, heard["id"]))
        assert re.search(counts.format(0, 1, 0), row_of(listed, deaf["id"]))
        quiet = await api_hook(web, account, events=["budget.threshold"])
        assert "No events yet" in (await b.get(f"/alerts/{quiet['id']}")).text


# --- the pure parts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("50, 80, 100", [50, 80, 100]),
        ("50 80\n100", [50, 80, 100]),
        ("90%, 75 %", [90, 75]),
        (" ,", None),
        ("", None),
        ("-5", [-5]),  # the service refuses it, naming the range
    ],
)
def test_thresholds_as_typed(text: str, found: list[int] | None) -> None:
    assert thresholds(text) == found


@pytest.mark.parametrize("text", ["fifty", "50.5", "1e2", "50,,x"])
def test_thresholds_not_whole_numbers(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        thresholds(text)
    assert caught.value.param == "thresholds"


def test_payload_summaries() -> None:
    budget = {"threshold_percent": 80, "token_id": 7, "period": "day", "budget_usd": "5",
              "used_usd": "4.000000001"}  # fmt: skip
    assert payload_summary({"event": "budget.threshold", "payload": budget}) == (
        "80 % of token #7's day budget of $5.00: $4.000000001 used"
    )
    mine = budget | {"token_id": None, "period": "month"}
    assert payload_summary({"event": "budget.threshold", "payload": mine}).startswith(
        "80 % of the account's month budget"
    )
    low = {"balance_usd": "-0.5", "low_balance_usd": "1"}
    assert payload_summary({"event": "balance.low", "payload": low}) == (
        "balance −$0.50, below $1.00"
    )
    assert payload_summary({"event": "later.kind", "payload": {"a": 1}}) == '{"a":1}'


def test_status_counts_name_every_status() -> None:
    events = [{"status": s} for s in ("failed", "delivered", "delivered")]
    assert status_counts(events) == {"delivered": 2, "pending": 0, "failed": 1}
    assert status_counts([]) == {"delivered": 0, "pending": 0, "failed": 0}


# --- in a browser -----------------------------------------------------------------


def nav(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


async def test_alerts_in_a_browser(browser: Any, web: Served) -> None:
    account = await new_user(web)
    page = await new_page(browser, web)
    await browser_sign_in(page, account["username"])
    await nav(page, "Alerts").click()
    await page.get_by_role("heading", name="Alerts").wait_for()
    add = page.locator("#add")
    assert await add.get_by_label("Thresholds (% of a budget)").input_value() == "50, 80, 100"

    # A bad URL: explained on the form, nothing added.
    await add.get_by_label("URL").fill("ftp://hooks.example/x")
    await add.get_by_role("button", name="Add webhook").click()
    await page.get_by_text("'url' must be an http or https URL.").wait_for()
    assert await page.locator("tr[data-webhook-id]").count() == 0
    assert await add.get_by_label("URL").input_value() == "ftp://hooks.example/x"

    await add.get_by_label("URL").fill(HOOK_URL)
    await add.get_by_label("Balance falls low").uncheck()
    await add.get_by_label("Low balance (USD)").fill("3")
    await add.get_by_role("button", name="Add webhook").click()
    await page.get_by_role("heading", name="Webhook added").wait_for()
    secret: str = await page.get_by_label("Signing secret", exact=True).input_value()
    assert secret.startswith("whsec_")
    await page.get_by_role("link", name="Done").click()
    row = page.locator("tr[data-webhook-id]")
    await row.wait_for()
    text = await row.inner_text()
    assert HOOK_URL in text and "budget.threshold" in text and "balance.low" not in text
    assert "50, 80, 100 %" in text and "$3.00" in text
    assert secret not in await page.content()

    await row.get_by_role("button", name="Disable").click()
    await page.get_by_text(f"The webhook to {HOOK_URL} is disabled").wait_for()
    assert await row.locator("[data-status]").inner_text() == "disabled"
    (hook,) = await api_hooks(web, account)
    assert hook["enabled"] is False

    await row.get_by_role("link").click()  # its events page
    await page.get_by_role("heading", name=f"Webhook to {HOOK_URL}").wait_for()
    await page.get_by_text("No events yet").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete").click()
    await page.get_by_text(f"Deleted the webhook to {HOOK_URL}").wait_for()
    assert await page.locator("tr[data-webhook-id]").count() == 0
    assert await api_hooks(web, account) == []

    # Another account's webhook page is a 404 in the browser too.
    other = await new_user(web)
    theirs = await api_hook(web, other)
    got = await page.goto(f"/alerts/{theirs['id']}")
    assert got is not None and got.status == 404
