"""The sign-in throttle (tollway.web.throttle) against the real gateway on
loopback: concurrent wrong passwords are throttled like sequential ones, on
every form that checks a password, and at most the limit reaches argon2."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from test_web import PASSWORD, Browser, new_user, signed_in

from tollway.manage import accounts as accounts_service
from tollway.simulator import Simulator
from tollway.types import Model
from tollway.web.throttle import MAX_FAILURES

from conftest import Served, add_channel, serve, test_settings

WRONG = "not the password"
CONCURRENT = 60


@pytest.fixture
async def web(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> AsyncIterator[Served]:
    async with serve(test_settings(database_url), catalog_models) as s:
        await add_channel(s, simulator.base_url)
        yield s


@pytest.fixture
def hashes_checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password check that reaches argon2 (the slow part)."""
    seen: list[str] = []
    real = accounts_service._password_matches

    async def counted(password_hash: str, password: str) -> bool:
        seen.append(password)
        return await real(password_hash, password)

    monkeypatch.setattr(accounts_service, "_password_matches", counted)
    return seen


async def test_concurrent_wrong_passwords_are_throttled(
    web: Served, hashes_checked: list[str]
) -> None:
    account = await new_user(web)
    async with Browser(web.base_url) as b:
        await b.get("/signin")
        form = {"username": account["username"], "password": WRONG}
        answers = await asyncio.gather(*(b.post("/signin", form) for _ in range(CONCURRENT)))
        statuses = Counter(got.status_code for got in answers)
        assert statuses == {401: MAX_FAILURES, 429: CONCURRENT - MAX_FAILURES}
        assert len(hashes_checked) == MAX_FAILURES  # the rest never reached argon2
        right = await b.post("/signin", {"username": account["username"], "password": PASSWORD})
        assert right.status_code == 429 and "Too many failed attempts" in right.text
    assert len(hashes_checked) == MAX_FAILURES


async def test_a_success_clears_the_failures_counted_before_the_hash(web: Served) -> None:
    account = await new_user(web)
    async with Browser(web.base_url) as b:
        await b.get("/signin")
        form = {"username": account["username"], "password": WRONG}
        for _ in range(MAX_FAILURES - 1):
            assert (await b.post("/signin", form)).status_code == 401
        assert (await b.sign_in(account["username"])).status_code == 303
        await b.post("/signout", {})
        await b.get("/signin")
        for _ in range(MAX_FAILURES):  # a fresh allowance, each attempt counted once
            assert (await b.post("/signin", form)).status_code == 401
        assert (await b.post("/signin", form)).status_code == 429


async def test_concurrent_wrong_current_passwords_are_throttled(
    web: Served, hashes_checked: list[str]
) -> None:
    async with signed_in(web) as (b, account):
        hashes_checked.clear()  # the sign-in's own check
        form = {"current": WRONG, "new": "a brand new password"}
        answers = await asyncio.gather(
            *(b.post("/account/password", form) for _ in range(CONCURRENT))
        )
        statuses = Counter(got.status_code for got in answers)
        assert statuses == {303: MAX_FAILURES, 429: CONCURRENT - MAX_FAILURES}
        assert len(hashes_checked) == MAX_FAILURES
        right = await b.post("/account/password", {"current": PASSWORD, "new": "another one!"})
        assert right.status_code == 429 and "Too many failed attempts" in right.text
    async with Browser(web.base_url) as fresh:  # one budget: sign-in is throttled too
        assert (await fresh.sign_in(account["username"])).status_code == 429
    assert len(hashes_checked) == MAX_FAILURES
