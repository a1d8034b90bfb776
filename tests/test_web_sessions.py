"""Console sessions held server-side (tollway.web.session,
tollway.manage.sessions), against the real gateway on loopback: a cookie
copied before sign-out, a password change or a disabled account is dead
after it; sessions expire, are renewed in use, and are swept."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import itsdangerous
import pytest
from sqlalchemy import func, insert, select, update
from test_web import PASSWORD, SECRET, Browser, new_user, signed_in

from tollway.db.schema import web_sessions
from tollway.manage import sessions as sessions_service
from tollway.simulator import Simulator
from tollway.timeutil import aware, utcnow
from tollway.types import Model
from tollway.web.app import SESSION_COOKIE, SESSION_MAX_AGE_S

from conftest import Served, add_channel, serve, test_settings


@pytest.fixture
async def web(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> AsyncIterator[Served]:
    settings = test_settings(database_url, secret_key=SECRET)
    async with serve(settings, catalog_models) as s:
        await add_channel(s, simulator.base_url)
        yield s


def copied(b: Browser) -> httpx.AsyncClient:
    """Another client that replays ``b``'s session cookie as it is now."""
    cookie = b.http.cookies[SESSION_COOKIE]
    return httpx.AsyncClient(
        base_url=str(b.http.base_url), cookies={SESSION_COOKIE: cookie}, timeout=30
    )


async def assert_signed_out(replay: httpx.AsyncClient, csrf: str) -> None:
    got = await replay.get("/tokens")
    assert got.status_code == 303 and got.headers["location"].startswith("/signin")
    got = await replay.get("/api/me")  # the management API never takes a console cookie
    assert got.status_code == 401
    posted = await replay.post("/tokens", data={"csrf": csrf, "name": "after"})
    assert posted.status_code == 303 and posted.headers["location"] == "/signin"


async def test_a_cookie_copied_before_sign_out_is_dead_after_it(web: Served) -> None:
    async with signed_in(web) as (b, _), copied(b) as replay:
        assert (await replay.get("/tokens")).status_code == 200
        assert (await b.post("/signout", {})).status_code == 303
        await assert_signed_out(replay, b.csrf)


async def test_signing_out_one_browser_leaves_the_others_signed_in(web: Served) -> None:
    async with signed_in(web) as (first, account), Browser(web.base_url) as second:
        assert (await second.sign_in(account["username"])).status_code == 303
        assert (await first.post("/signout", {})).status_code == 303
        assert (await first.get("/tokens")).status_code == 303
        assert (await second.get("/tokens")).status_code == 200


async def test_a_cookie_copied_before_a_password_change_is_dead_after_it(web: Served) -> None:
    async with signed_in(web) as (b, account):
        async with copied(b) as replay:
            got = await b.post("/account/password", {"current": PASSWORD, "new": "a new password"})
            assert got.status_code == 303
            assert (await b.get("/tokens")).status_code == 200  # this browser stays in
            await assert_signed_out(replay, b.csrf)
        async with copied(b) as replay:  # the session it stays in is a new one
            got = await web.admin.patch(
                f"/api/users/{account['id']}", json={"password": "set by an admin"}
            )
            assert got.status_code == 200
            await assert_signed_out(replay, b.csrf)
        assert (await b.get("/tokens")).status_code == 303


async def test_disabling_an_account_ends_its_sessions_for_good(web: Served) -> None:
    async with signed_in(web) as (b, account):
        async with copied(b) as replay:
            await web.admin.patch(f"/api/users/{account['id']}", json={"enabled": False})
            await web.admin.patch(f"/api/users/{account['id']}", json={"enabled": True})
            await assert_signed_out(replay, b.csrf)
        assert await session_rows(web, account["id"]) == 0


async def test_a_cookie_from_before_server_side_sessions_counts_as_signed_out(
    web: Served,
) -> None:
    account = await new_user(web)
    old = {"uid": account["id"], "pw": "0123456789abcdef", "csrf": "x" * 43}
    signed = itsdangerous.TimestampSigner(SECRET).sign(base64.b64encode(json.dumps(old).encode()))
    async with httpx.AsyncClient(
        base_url=web.base_url, cookies={SESSION_COOKIE: signed.decode()}, timeout=30
    ) as replay:
        await assert_signed_out(replay, old["csrf"])


async def test_an_expired_session_is_signed_out_and_cleaned_at_sign_in(web: Served) -> None:
    async with signed_in(web) as (b, account):
        async with web.gw.engine.begin() as conn:
            await conn.execute(
                update(web_sessions)
                .where(web_sessions.c.account_id == account["id"])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        assert (await b.get("/tokens")).status_code == 303
        assert await session_rows(web, account["id"]) == 1
        assert (await b.sign_in(account["username"])).status_code == 303
        assert await session_rows(web, account["id"]) == 1  # the new one; the old is gone


async def test_a_session_in_use_is_renewed_now_and_then(web: Served) -> None:
    async with signed_in(web) as (b, account):
        soon = utcnow() + timedelta(minutes=5)
        async with web.gw.engine.begin() as conn:
            await conn.execute(
                update(web_sessions)
                .where(web_sessions.c.account_id == account["id"])
                .values(expires_at=soon)
            )
        assert (await b.get("/tokens")).status_code == 200
        expires_at = await session_expiry(web, account["id"])
        assert expires_at > utcnow() + timedelta(seconds=SESSION_MAX_AGE_S - 60)


async def test_sessions_store_only_a_hash_of_the_cookie_id(web: Served) -> None:
    account = await new_user(web)
    raw = await sessions_service.start(web.gw, account["id"], 60)
    async with web.gw.engine.connect() as conn:
        ids = (await conn.execute(select(web_sessions.c.id))).scalars().all()
    assert raw not in ids and sessions_service.stored_id(raw) in ids
    async with web.gw.engine.begin() as conn:
        await conn.execute(
            insert(web_sessions).values(
                id="stale",
                account_id=account["id"],
                created_at=utcnow() - timedelta(days=2),
                expires_at=utcnow() - timedelta(days=1),
            )
        )
    assert await sessions_service.account_of(web.gw, raw, 60) is not None
    await sessions_service.end(web.gw, raw)
    assert await sessions_service.account_of(web.gw, raw, 60) is None
    await sessions_service.start(web.gw, account["id"], 60)
    assert await session_rows(web, account["id"]) == 1


async def session_rows(s: Served, account_id: int) -> int:
    async with s.gw.engine.connect() as conn:
        query = select(func.count()).where(web_sessions.c.account_id == account_id)
        return int((await conn.execute(query)).scalar_one())


async def session_expiry(s: Served, account_id: int) -> datetime:
    async with s.gw.engine.connect() as conn:
        query = select(web_sessions.c.expires_at).where(web_sessions.c.account_id == account_id)
        expires_at = aware((await conn.execute(query)).scalar_one())
    assert expires_at is not None
    return expires_at
