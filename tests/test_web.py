"""The web console (tollway.web), server-side: pages, forms, sessions, CSRF and
isolation, against the real gateway served on loopback, with httpx as the
browser. The pure parts (chart layout, replay advice, form parsing) are
table-tested at the bottom."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tollway.catalog import load_catalog_files
from tollway.errors import ApiError
from tollway.manage.advisor import advise, profile, replay
from tollway.settings import Settings
from tollway.simulator import Simulator
from tollway.types import TOKEN_CLASSES, BillingMode, Model, nano_to_usd, usd_to_nano
from tollway.web import forms as web_forms
from tollway.web import session_secret
from tollway.web.chart import nice_step, spend_chart
from tollway.web.render import usd

from conftest import Served, add_channel, serve, test_settings

SECRET = "test-console-secret-" + "x" * 32
PASSWORD = "correct horse battery"
HELLO = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello there"}]}


# --- serving the gateway with the console mounted --------------------------------


@contextlib.asynccontextmanager
async def serve_console(settings: Settings, models: list[Model]) -> AsyncIterator[Served]:
    """The real gateway app; app.py mounts the console."""
    async with serve(settings, models) as served:
        yield served


async def add_simulator_channel(s: Served, simulator: Simulator) -> None:
    await add_channel(s, simulator.base_url)


@pytest.fixture
async def web(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> AsyncIterator[Served]:
    """The gateway with the console, and a channel to the simulator for every model."""
    async with serve_console(test_settings(database_url), catalog_models) as s:
        await add_simulator_channel(s, simulator)
        yield s


# --- a small browser: cookies, CSRF tokens from forms -----------------------------


class Browser:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False)
        self.csrf = ""

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        got = await self.http.get(path, **kwargs)
        found = re.search(r'name="csrf" value="([^"]+)"', got.text)
        if found:
            self.csrf = found.group(1)
        return got

    async def post(self, path: str, data: dict[str, str], csrf: bool = True) -> httpx.Response:
        if csrf and not self.csrf:
            await self.get("/signin")
        form = {"csrf": self.csrf, **data} if csrf else data
        return await self.http.post(path, data=form)

    async def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        await self.get("/signin")
        got = await self.post("/signin", {"username": username, "password": password})
        if got.status_code == 303:
            await self.get("/tokens")  # the session's fresh CSRF token
        return got

    async def create_token(self, **fields: str) -> httpx.Response:
        form = {
            "name": "app",
            "billing_mode": "pay_per_use_priority",
            "quota_usd": "",
            "expires_at": "",
            "models": "",
        }
        form.update(fields)
        return await self.post("/tokens", form)


async def new_user(s: Served, role: str = "user", credit: str = "10") -> dict[str, Any]:
    """An account with a password (and its management key), credited."""
    name = f"web-{secrets.token_hex(4)}"
    got = await s.admin.post(
        "/api/users", json={"username": name, "password": PASSWORD, "role": role}
    )
    assert got.status_code == 201, got.text
    account: dict[str, Any] = got.json()
    if credit != "0":
        got = await s.admin.post(
            f"/api/users/{account['id']}/credit", json={"amount_usd": credit, "reason": "test"}
        )
        assert got.status_code == 200, got.text
    return account


@contextlib.asynccontextmanager
async def signed_in(s: Served, role: str = "user") -> AsyncIterator[tuple[Browser, dict[str, Any]]]:
    account = await new_user(s, role)
    async with Browser(s.base_url) as browser:
        got = await browser.sign_in(account["username"])
        assert got.status_code == 303, got.text
        yield browser, account


def key_on(page: str) -> str:
    found = re.search(r'id="new-key" class="mono" value="(sk-[^"]+)"', page)
    assert found, "the new key is not on the page"
    return found.group(1)


async def chat(s: Served, key: str, **extra: Any) -> httpx.Response:
    async with s.client(key) as c:
        return await c.post("/v1/chat/completions", json={**HELLO, **extra})


async def api_tokens(s: Served, account: dict[str, Any]) -> list[dict[str, Any]]:
    async with s.client(account["management_key"]) as c:
        data: list[dict[str, Any]] = (await c.get("/api/tokens")).json()["data"]
    return data


# --- sign-in, sessions, CSRF ------------------------------------------------------


async def test_pages_need_sign_in_and_sign_in_works(web: Served) -> None:
    account = await new_user(web)
    async with Browser(web.base_url) as b:
        got = await b.get("/tokens?x=1")
        assert got.status_code == 303
        assert got.headers["location"] == "/signin?next=%2Ftokens%3Fx%3D1"
        page = (await b.get("/signin")).text
        assert '<label for="username">Username</label>' in page
        assert '<label for="password">Password</label>' in page
        assert ">Sign in</button>" in page
        wrong = await b.post("/signin", {"username": account["username"], "password": "nope"})
        assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
        nobody = await b.post("/signin", {"username": "no-such-user", "password": PASSWORD})
        assert nobody.status_code == 401
        got = await b.post(
            "/signin", {"username": account["username"], "password": PASSWORD, "next": "/usage"}
        )
        assert got.status_code == 303 and got.headers["location"] == "/usage"
        assert (await b.get("/signin")).headers["location"] == "/tokens"  # already in
        page = (await b.get("/tokens")).text
        assert '<a href="/tokens" aria-current="page">Tokens</a>' in page
        assert account["username"] in page
        got = await b.post("/signout", {})
        assert got.status_code == 303
        assert (await b.get("/tokens")).status_code == 303


async def test_sign_in_never_redirects_off_site(web: Served) -> None:
    account = await new_user(web)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        async with Browser(web.base_url) as b:
            await b.get("/signin")
            form = {"username": account["username"], "password": PASSWORD, "next": target}
            got = await b.post("/signin", form)
            assert got.headers["location"] == "/tokens"


async def test_every_form_needs_the_csrf_token(web: Served) -> None:
    async with signed_in(web) as (b, account):
        for path in ("/tokens", "/signout", "/account/password"):
            got = await b.post(path, {"name": "sneaky"}, csrf=False)
            assert got.status_code == 403, path
            assert "did not come from this site" in got.text
        got = await b.http.post("/tokens", data={"csrf": "forged", "name": "sneaky"})
        assert got.status_code == 403
        assert await api_tokens(web, account) == []
    async with Browser(web.base_url) as fresh:  # sign-in too: no login CSRF
        got = await fresh.post(
            "/signin", {"username": account["username"], "password": PASSWORD}, csrf=False
        )
        assert got.status_code == 403


async def test_changing_a_password_ends_other_sessions(web: Served) -> None:
    async with signed_in(web) as (first, account), Browser(web.base_url) as second:
        assert (await second.sign_in(account["username"])).status_code == 303
        got = await first.post("/account/password", {"current": PASSWORD, "new": "a new password"})
        assert got.status_code == 303
        assert (await first.get("/tokens")).status_code == 200
        assert (await second.get("/tokens")).status_code == 303  # signed out
        assert (await second.sign_in(account["username"], "a new password")).status_code == 303


async def test_disabling_an_account_ends_its_session(web: Served) -> None:
    async with signed_in(web) as (b, account):
        got = await web.admin.patch(f"/api/users/{account['id']}", json={"enabled": False})
        assert got.status_code == 200
        assert (await b.get("/tokens")).status_code == 303
        assert (await b.sign_in(account["username"])).status_code == 401


async def test_sign_in_is_throttled_after_repeated_failures(web: Served) -> None:
    account = await new_user(web)
    async with Browser(web.base_url) as b:
        await b.get("/signin")
        for _ in range(10):
            got = await b.post("/signin", {"username": account["username"], "password": "bad"})
            assert got.status_code == 401
        got = await b.post("/signin", {"username": account["username"], "password": PASSWORD})
        assert got.status_code == 429


async def test_console_leaves_the_api_answers_alone(web: Served) -> None:
    async with web.client() as c:
        got = await c.get("/v1/chat/completions")
        assert got.status_code == 405 and got.json()["error"]["code"] == "method_not_allowed"
        got = await c.get("/v1/nothing-here")
        assert got.status_code == 404 and got.json()["error"]["code"] == "not_found"
        got = await c.get("/no-such-page")
        assert got.status_code == 404 and got.json()["error"]["code"] == "not_found"
        page = await c.get("/signin")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        cookie = page.headers["set-cookie"]
        assert "tollway_session=" in cookie and "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        assert (await c.get("/static/style.css")).status_code == 200


# --- tokens -----------------------------------------------------------------------


async def test_token_form_lists_five_modes_recommended_first_hybrid_disabled(web: Served) -> None:
    async with signed_in(web) as (b, _), web.client() as api:
        page = (await b.get("/tokens")).text
        modes = (await api.get("/api/billing-modes")).json()["data"]
    assert '<label for="name">Name</label>' in page
    assert '<label for="billing_mode">Billing mode</label>' in page
    assert ">Create token</button>" in page and ">Save</button>" in page
    options = re.findall(r"<option value=\"(\w+)\"([^>]*)>\s*([^<]+?)\s*</option>", page)
    shown = {
        value: (attrs, text)
        for value, attrs, text in options
        if value in {m["value"] for m in modes}
    }
    assert list(shown) == [m["value"] for m in modes]
    attrs, text = shown["pay_per_use_priority"]
    assert "selected" in attrs and "(recommended)" in text
    hybrid_attrs, hybrid_text = shown["hybrid"]
    assert "disabled" in hybrid_attrs and "not applicable" in hybrid_text
    for m in modes:
        attrs, text = shown[m["value"]]
        assert html.escape(m["description"]) in html.escape(html.unescape(attrs))
        if m["applicable"]:
            assert f"reaches {m['models_reachable']} models" in text


async def test_create_token_with_the_default_mode_shows_the_key_once(web: Served) -> None:
    async with signed_in(web) as (b, account):
        got = await b.create_token(name="my app")
        assert got.status_code == 200
        assert got.headers["cache-control"] == "no-store"
        key = key_on(got.text)
        assert "shown only once" in got.text and "data-copy" in got.text
        assert f"{web.base_url}/v1/chat/completions" in got.text and key in got.text
        [token] = await api_tokens(web, account)
        assert token["billing_mode"] == "pay_per_use_priority" and token["name"] == "my app"
        listing = (await b.get("/tokens")).text
        assert key not in listing and token["key_prefix"] in listing
        assert "Pay-per-Use Priority" in listing
    answer = await chat(web, key)
    assert answer.status_code == 200, answer.text


async def test_token_fields_are_parsed_exactly(web: Served) -> None:
    async with signed_in(web) as (b, account):
        got = await b.create_token(
            name="limited",
            billing_mode="pay_per_use",
            quota_usd="$1,000.10",
            expires_at="2031-02-03T04:05",
            models="gpt-4o, claude-3-5-sonnet-20241022\nflux-1.1-pro",
        )
        assert got.status_code == 200, got.text
        [token] = await api_tokens(web, account)
    assert token["billing_mode"] == "pay_per_use" and token["quota_usd"] == "1000.1"
    assert token["expires_at"] == "2031-02-03T04:05:00Z"
    assert token["models"] == ["gpt-4o", "claude-3-5-sonnet-20241022", "flux-1.1-pro"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "'name' must be 1 to 200 characters"),
        ({"quota_usd": "lots"}, "Quota: enter an amount in USD"),
        ({"quota_usd": "0.0000000001"}, "finer than a nano-USD"),
        ({"quota_usd": "-1"}, "cannot be negative"),
        ({"expires_at": "soon"}, "Expires: enter a date and time"),
        ({"models": "gpt-4o no-such-model"}, "Unknown models in the allowlist: no-such-model"),
        ({"billing_mode": "hybrid"}, "not applicable"),
        ({"billing_mode": "cheapest"}, "Unknown billing mode"),
    ],
)
async def test_bad_token_fields_are_explained_and_create_nothing(
    web: Served, fields: dict[str, str], message: str
) -> None:
    async with signed_in(web) as (b, account):
        got = await b.create_token(**fields)
        assert got.status_code == 400
        assert html.escape(message, quote=True) in got.text or message in html.unescape(got.text)
        assert 'role="alert"' in got.text
        assert await api_tokens(web, account) == []


async def test_edit_to_pay_per_call_refuses_the_next_chat_call(web: Served) -> None:
    async with signed_in(web) as (b, account):
        key = key_on((await b.create_token(name="switch me")).text)
        assert (await chat(web, key)).status_code == 200
        [token] = await api_tokens(web, account)
        edit = (await b.get(f"/tokens/{token['id']}")).text
        assert 'value="switch me"' in edit and ">Save</button>" in edit
        form = {
            "name": "switch me",
            "billing_mode": "pay_per_call",
            "quota_usd": "",
            "expires_at": "",
            "models": "",
        }
        got = await b.post(f"/tokens/{token['id']}", form)
        assert got.status_code == 303 and got.headers["location"] == "/tokens"
        assert "Saved token" in (await b.get("/tokens")).text
    [token] = await api_tokens(web, account)
    assert token["billing_mode"] == "pay_per_call"
    refused = await chat(web, key)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "billing_mode_mismatch"


async def test_edit_refuses_hybrid_and_keeps_the_mode(web: Served) -> None:
    async with signed_in(web) as (b, account):
        await b.create_token(name="x")
        [token] = await api_tokens(web, account)
        form = {
            "name": "x",
            "billing_mode": "hybrid",
            "quota_usd": "",
            "expires_at": "",
            "models": "",
        }
        got = await b.post(f"/tokens/{token['id']}", form)
        assert got.status_code == 400 and "pay_per_use_priority" in got.text
    [token] = await api_tokens(web, account)
    assert token["billing_mode"] == "pay_per_use_priority"


async def test_disable_enable_and_delete(web: Served) -> None:
    async with signed_in(web) as (b, account):
        key = key_on((await b.create_token(name="toggle")).text)
        [token] = await api_tokens(web, account)
        await b.post(f"/tokens/{token['id']}/enabled", {"enabled": "0"})
        assert (await chat(web, key)).status_code == 401
        assert "disabled" in (await b.get("/tokens")).text
        await b.post(f"/tokens/{token['id']}/enabled", {"enabled": "1"})
        assert (await chat(web, key)).status_code == 200
        got = await b.post(f"/tokens/{token['id']}/delete", {})
        assert got.status_code == 303
        assert (await chat(web, key)).status_code == 401
        assert await api_tokens(web, account) == []


async def test_token_usage_log_on_its_edit_page(web: Served) -> None:
    async with signed_in(web) as (b, account):
        key = key_on((await b.create_token(name="logged")).text)
        assert (await chat(web, key)).status_code == 200
        [token] = await api_tokens(web, account)
        page = (await b.get(f"/tokens/{token['id']}")).text
    assert "Usage log" in page and "<code>gpt-4o</code>" in page and "per-use" in page


# --- isolation --------------------------------------------------------------------


async def test_a_user_cannot_see_or_touch_another_users_tokens_or_usage(web: Served) -> None:
    async with signed_in(web) as (alice, alice_account), signed_in(web) as (bob, bob_account):
        key = key_on((await alice.create_token(name="alice-secret-app")).text)
        assert (await chat(web, key)).status_code == 200
        [token] = await api_tokens(web, alice_account)
        tid = token["id"]
        assert "alice-secret-app" not in (await bob.get("/tokens")).text
        for path in (
            f"/tokens/{tid}",
            f"/usage?token={tid}",
            f"/advisor?token={tid}",
            f"/models?token={tid}",
            f"/usage.csv?token={tid}",
        ):
            got = await bob.get(path)
            assert got.status_code == 404, path
            assert "alice-secret-app" not in got.text
        edit = {
            "name": "stolen",
            "billing_mode": "pay_per_call",
            "quota_usd": "",
            "expires_at": "",
            "models": "",
        }
        for path, form in (
            (f"/tokens/{tid}", edit),
            (f"/tokens/{tid}/enabled", {"enabled": "0"}),
            (f"/tokens/{tid}/delete", {}),
            (f"/advisor/{tid}/apply", {"billing_mode": "pay_per_call"}),
        ):
            assert (await bob.post(path, form)).status_code == 404, path
        usage = (await bob.get("/usage")).text
        assert "<code>gpt-4o</code>" not in usage
        assert "No calls yet." in usage
        csv_rows = list(csv.reader(io.StringIO((await bob.get("/usage.csv")).text)))
        assert len(csv_rows) == 1  # the header only
        bob_usage_all = await bob.get("/usage?account=all")  # not an admin: ignored
        assert "<code>gpt-4o</code>" not in bob_usage_all.text
        for path in ("/admin/accounts", "/admin/channels", "/admin/models"):
            assert (await bob.get(path)).status_code == 403
    [still] = await api_tokens(web, alice_account)
    assert still["name"] == "alice-secret-app" and still["enabled"]
    async with web.client(bob_account["management_key"]) as api:
        assert (await api.get(f"/api/tokens/{tid}")).status_code == 404
        assert (await api.get("/api/usage", params={"token_id": tid})).json()["data"] == []
        assert (await api.get("/api/usage")).json()["data"] == []


# --- models, usage, advisor -------------------------------------------------------


async def test_models_page_searches_filters_and_explains_refusals(web: Served) -> None:
    async with signed_in(web) as (b, _):
        page = (await b.get("/models", params={"q": "gpt-4o", "kind": "multimodal"})).text
        assert "<code>gpt-4o</code>" in page and "$5.00 / $15.00" in page
        assert "<code>flux-1.1-pro</code>" not in page
        page = (
            await b.get("/models", params={"q": "flux-1.1-pro gpt-4o", "mode": "pay_per_call"})
        ).text
        assert "<code>flux-1.1-pro</code>" not in page  # both words must match
        page = (await b.get("/models", params={"mode": "pay_per_call", "q": "gpt-4o"})).text
        assert "refused" in page and "pay_per_use_priority" in page
        page = (await b.get("/models", params={"mode": "pay_per_call", "only": "callable"})).text
        assert "<code>flux-1.1-pro</code>" in page and "<code>gpt-4o</code>" not in page
        await b.create_token(
            name="images", billing_mode="pay_per_use_priority", models="flux-1.1-pro"
        )
        page = (await b.get("/tokens")).text
        tid = re.search(r'data-token-id="(\d+)"', page).group(1)  # type: ignore[union-attr]
        page = (await b.get("/models", params={"token": tid, "q": "gpt-4o"})).text
        assert "Not in this token" in page
        assert (await b.get("/models", params={"mode": "nope"})).status_code == 400


async def test_usage_page_chart_and_csv(web: Served) -> None:
    async with signed_in(web) as (b, account):
        key = key_on((await b.create_token(name="charted")).text)
        for _ in range(3):
            assert (await chat(web, key)).status_code == 200
        assert (await chat(web, key, model="claude-3-5-sonnet-20241022")).status_code == 200
        async with web.client(account["management_key"]) as api:
            records = (await api.get("/api/usage")).json()["data"]
            me = (await api.get("/api/me")).json()
        page = (await b.get("/usage")).text
        assert page.count('class="bar s') >= 2
        assert "<code>gpt-4o</code>" in page and "<code>claude-3-5-sonnet-20241022</code>" in page
        assert usd(me["balance_usd"]) in page and "test" in page  # balance, recent credit
        total = sum(usd_to_nano(r["cost_usd"]) for r in records)
        assert "in all" in page and usd(nano_to_usd(total)) in page
        got = await b.get("/usage.csv", params={"model": "gpt-4o"})
        assert got.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(got.text)))
        assert len(rows) == 3 and {r["model"] for r in rows} == {"gpt-4o"}
        assert {r["token_name"] for r in rows} == {"charted"}
        by_id = {r["request_id"]: r["cost_usd"] for r in records}
        assert all(by_id[r["request_id"]] == r["cost_usd"] for r in rows)
        today = datetime.now(UTC).date()
        future = (today + timedelta(days=3)).isoformat()
        assert "No calls yet." in (await b.get("/usage", params={"since": future})).text
        assert (await b.get("/usage", params={"since": "yesterday"})).status_code == 400


async def test_advisor_replays_under_every_mode(web: Served) -> None:
    async with signed_in(web) as (b, account):
        key = key_on((await b.create_token(name="texty", billing_mode="pay_per_use")).text)
        for _ in range(2):
            assert (await chat(web, key)).status_code == 200
        [token] = await api_tokens(web, account)
        page = (await b.get("/advisor", params={"token": token["id"]})).text
        assert "Recommendation: Pay-per-Use Priority" in page
        assert "Pure text" in page
        row = re.search(r"Pay-per-Call</th>.*?</tr>", page, re.S)
        assert row and 'badge bad">2<' in row.group(0)  # both calls refused
        got = await b.post(
            f"/advisor/{token['id']}/apply", {"billing_mode": "pay_per_use_priority"}
        )
        assert got.status_code == 303
    [token] = await api_tokens(web, account)
    assert token["billing_mode"] == "pay_per_use_priority"


# --- admin ------------------------------------------------------------------------


async def test_admin_creates_accounts_and_credits_them(web: Served) -> None:
    async with signed_in(web, role="admin") as (b, _):
        name = f"carol-{secrets.token_hex(3)}"
        got = await b.post(
            "/admin/accounts", {"username": name, "password": PASSWORD, "role": "user"}
        )
        assert got.status_code == 200 and "Shown only once" in got.text
        management_key = re.search(r'value="(tm-[^"]+)"', got.text).group(1)  # type: ignore[union-attr]
        users = (await web.admin.get("/api/users")).json()["data"]
        carol = next(u for u in users if u["username"] == name)
        got = await b.post(
            f"/admin/accounts/{carol['id']}/credit", {"amount_usd": "12.50", "reason": "invoice 7"}
        )
        assert got.status_code == 303
        got = await b.post(
            f"/admin/accounts/{carol['id']}/credit", {"amount_usd": "-2.25", "reason": "refund"}
        )
        bad = await b.post(
            f"/admin/accounts/{carol['id']}/credit", {"amount_usd": "1.5e-12", "reason": "x"}
        )
        assert bad.status_code == 303
        page = (await b.get("/admin/accounts")).text
        assert "finer than a nano-USD" in page or "enter an amount" in page
        noreason = await b.post(
            f"/admin/accounts/{carol['id']}/credit", {"amount_usd": "1", "reason": ""}
        )
        assert noreason.status_code == 303
        assert "needs a reason" in (await b.get("/admin/accounts")).text
    async with web.client(management_key) as api:
        me = (await api.get("/api/me")).json()
    assert me["balance_usd"] == "10.25"
    assert [c["reason"] for c in me["recent_credits"]] == ["refund", "invoice 7"]
    async with Browser(web.base_url) as carol_browser:
        assert (await carol_browser.sign_in(name)).status_code == 303


async def test_admin_channels_and_prices(web: Served) -> None:
    async with signed_in(web, role="admin") as (b, _):
        got = await b.post(
            "/admin/channels",
            {
                "name": "backup",
                "type": "openai",
                "base_url": "http://127.0.0.1:9/v1",
                "api_keys": "sk-upstream-secret",
                "key_strategy": "round_robin",
                "models": "gpt-4o",
                "model_mapping": "",
                "priority": "-1",
                "weight": "1",
                "groups": "default",
                "methods": "per_use",
                "cost_multiplier": "",
            },
        )
        assert got.status_code == 303
        page = (await b.get("/admin/channels")).text
        assert "backup" in page and "sk-upstream-secret" not in page
        channels = (await web.admin.get("/api/channels")).json()["data"]
        backup = next(c for c in channels if c["name"] == "backup")
        assert backup["priority"] == -1 and backup["models"] == ["gpt-4o"]
        await b.post(f"/admin/channels/{backup['id']}/delete", {})
        assert all(
            c["name"] != "backup" for c in (await web.admin.get("/api/channels")).json()["data"]
        )
        assert "$5.00 / $15.00" in (await b.get("/admin/models", params={"q": "gpt-4o"})).text
        form = {
            "kind": "multimodal",
            "aliases": "",
            "description": "GPT-4o",
            "default_method": "",
            "input_mtok": "2.5",
            "output_mtok": "10",
            "price": "0.01",
        }
        got = await b.post("/admin/models/gpt-4o", form)
        assert got.status_code == 303, got.text
        model = (await web.admin.get("/api/models/gpt-4o")).json()
        assert model["per_use"]["input_mtok"] == "2.5" and model["per_call"] == {
            "price": "0.01",
            "unit": "call",
        }
        assert model["default_method"] == "per_use"
        bad = await b.post("/admin/models/gpt-4o", {**form, "input_mtok": "-1"})
        assert bad.status_code == 400 and "negative" in bad.text
        got = await b.post(
            "/admin/models",
            {
                "id": "house-model",
                "kind": "image",
                "provider": "custom",
                "input_mtok": "",
                "output_mtok": "",
                "price": "0.02",
            },
        )
        assert got.status_code == 303
        model = (await web.admin.get("/api/models/house-model")).json()
        assert model["per_call"] == {"price": "0.02", "unit": "image"} and model["per_use"] is None


# --- pure parts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "$0.00"),
        ("10", "$10.00"),
        ("1234.5", "$1,234.50"),
        ("0.000195", "$0.000195"),
        ("-5", "−$5.00"),
        (None, "—"),
    ],
)
def test_usd_shows_exact_amounts(amount: str | None, shown: str) -> None:
    assert usd(amount) == shown


@pytest.mark.parametrize(
    ("max_nano", "step"),
    [
        (0, 1),
        (1, 1),
        (4, 1),
        (5, 2),
        (9, 5),
        (10, 5),
        (1_000_000_000, 250_000_000),
        (1_000_000_001, 500_000_000),
        (195_000, 50_000),
    ],
)
def test_nice_step_covers_the_maximum(max_nano: int, step: int) -> None:
    assert nice_step(max_nano) == step
    assert nice_step(max_nano) * 4 >= max_nano


def test_spend_chart_stacks_by_model_and_keeps_exact_totals() -> None:
    d1, d2, d3 = date(2030, 1, 1), date(2030, 1, 2), date(2030, 1, 3)
    rows = [(d1, "a", 300), (d1, "b", 100), (d3, "a", 200)]
    rows += [(d2, f"m{i}", 1) for i in range(8)]
    chart = spend_chart(rows, [d1, d2, d3])
    assert chart.total_usd == nano_to_usd(608)
    assert [e.name for e in chart.legend][:2] == ["a", "b"] and chart.legend[
        -1
    ].name == "other models"
    day1 = [s for s in chart.segments if "2030-01-01" in s.title]
    assert len(day1) == 2 and day1[0].y + day1[0].height <= chart.plot_bottom
    assert max(s.y for s in day1) + max(s.height for s in day1) <= chart.plot_bottom
    tallest = min(s.y for s in chart.segments)
    assert tallest >= 12  # inside the plot
    assert [row[0] for row in chart.table] == ["2030-01-01", "2030-01-02", "2030-01-03"]
    assert spend_chart([], [d1]).empty


def test_replay_and_advice_follow_the_guide() -> None:
    catalog = {m.id: m for m in load_catalog_files()}
    lookup = catalog.get

    def record(model: str, items: int = 1) -> dict[str, Any]:
        tokens = dict.fromkeys(TOKEN_CLASSES, 0)
        tokens.update(input_tokens=12, output_tokens=9)
        return {"model": model, "items": items, "tokens": tokens, "status": "ok"}

    text = [record("gpt-4o")] * 9 + [record("flux-1.1-pro")]
    outcomes = {o.mode: o for o in replay(text, lookup)}
    assert outcomes[BillingMode.PAY_PER_USE_PRIORITY].cost_nano == 9 * 195_000 + 40_000_000
    assert outcomes[BillingMode.PAY_PER_USE].refused_calls == 1
    assert outcomes[BillingMode.PAY_PER_CALL].refused_calls == 9
    advice = advise(profile(text, lookup), list(outcomes.values()))
    assert advice.mode is BillingMode.PAY_PER_USE_PRIORITY
    assert advice.headline.startswith("Mainly text, occasionally images")
    pure_text = advise(profile(text[:9], lookup), replay(text[:9], lookup))
    assert pure_text.mode is BillingMode.PAY_PER_USE_PRIORITY and "Pure text" in pure_text.headline
    images = [record("flux-1.1-pro")] * 5
    assert advise(profile(images, lookup), replay(images, lookup)).mode is BillingMode.PAY_PER_CALL
    with_gpt_image = [*images, record("gpt-image-1")]  # token-billed: Pay-per-Call refuses it
    advice = advise(profile(with_gpt_image, lookup), replay(with_gpt_image, lookup))
    assert advice.headline.startswith("Pure image/video")
    assert advice.mode is BillingMode.PAY_PER_USE_PRIORITY  # same cost here, the guide's default
    assert "would have refused 1" in advice.reasons[0]
    mixed = [*images, record("gpt-4o")]
    advice = advise(profile(mixed, lookup), replay(mixed, lookup))
    assert advice.headline.startswith("Mainly images/videos, occasionally text")
    empty = advise(profile([], lookup), replay([], lookup))
    assert empty.mode is BillingMode.PAY_PER_USE_PRIORITY


@pytest.mark.parametrize(
    ("text", "nano"),
    [
        ("5", 5_000_000_000),
        ("$1,000.10", 1_000_100_000_000),
        ("0.000000001", 1),
        (" 0.1 ", 100_000_000),
    ],
)
def test_form_money_is_exact(text: str, nano: int) -> None:
    assert web_forms.money_nano(text, "Amount", "amount") == nano


@pytest.mark.parametrize("text", ["NaN", "1e", "0.1.2", "", "0.0000000001"])
def test_form_money_refuses_what_is_not_exact(text: str) -> None:
    with pytest.raises(ApiError):
        web_forms.money_nano(text, "Amount", "amount")


def test_session_secret_is_persisted_once_per_data_dir(tmp_path: Path) -> None:
    first = session_secret(None, tmp_path / "data")
    assert session_secret(None, tmp_path / "data") == first and len(first) >= 32
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert session_secret("k" * 40, tmp_path) == "k" * 40
    assert session_secret(None) != session_secret(None)
    with pytest.raises(ValueError):
        session_secret("short")
