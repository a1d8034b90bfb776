"""An edit that lowers what may be spent binds the next call, even though
processes hold calls in memory against balance leases
(tollway.ledger.leases): a lowered quota, a debit, a disabled token or account
returns every process's leases of it, and the edit answers once every live
process has taken it in, so the next call anywhere is weighed against the new
limit. Calls already in flight may finish; nothing started after the edit
answered."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from test_leases import lease_rows, token_money, two_processes
from test_ledger import funded, ledger_sum, money, record

from tollway.db.schema import tokens
from tollway.ledger import InsufficientFunds, Ledger
from tollway.simulator import Simulator
from tollway.types import Model

from conftest import Served, add_channel, serve, test_settings

TINY = Decimal("0.000001")


@dataclass
class Call:
    started: float
    ended: float
    status: int
    cost: Decimal


@dataclass
class Load:
    """Calls made back to back by a few clients until stopped."""

    served: Served
    key: str
    calls: list[Call] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    clients: list[asyncio.Task[None]] = field(default_factory=list)

    async def client(self) -> None:
        while not self.stopping.is_set():
            call = await chat(self.served, self.key)
            assert call.status in (200, 402), call
            self.calls.append(call)

    def succeeded(self) -> list[Call]:
        return [c for c in self.calls if c.status == 200]


async def chat(served: Served, key: str, content: str = "Hello there") -> Call:
    loop = asyncio.get_running_loop()
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}
    started = loop.time()
    async with served.client(key) as c:
        got = await c.post("/v1/chat/completions", json={**body, "max_tokens": 16})
    if got.status_code == 200:
        cost = Decimal(got.headers["x-tollway-cost-usd"])
    else:
        assert got.status_code != 402 or got.json()["error"]["code"] == "insufficient_quota"
        cost = Decimal(0)
    return Call(started, loop.time(), got.status_code, cost)


async def customer(served: Served, credit: str, **token_fields: Any) -> tuple[int, str, str, int]:
    """(account id, management key, API key, token id)."""
    account = await served.new_account(credit)
    token = await served.new_token(account["management_key"], **token_fields)
    return account["id"], account["management_key"], token["key"], token["id"]


async def under_load(served: Served, key: str, calls: int = 20, clients: int = 4) -> Load:
    """Clients calling back to back, once ``calls`` of them went through."""
    load = Load(served, key)
    load.clients = [asyncio.create_task(load.client()) for _ in range(clients)]
    for _ in range(1000):
        if len(load.succeeded()) >= calls:
            return load
        await asyncio.sleep(0.01)
    raise AssertionError(f"calls did not go through: {load.calls[-3:]}")


async def stop(load: Load, after_s: float = 0.3) -> None:
    await asyncio.sleep(after_s)  # calls keep coming meanwhile
    load.stopping.set()
    await asyncio.gather(*load.clients)


async def used_usd(served: Served, mkey: str, token_id: int) -> Decimal:
    async with served.client(mkey) as c:
        got = await c.get(f"/api/tokens/{token_id}")
    assert got.status_code == 200, got.text
    return Decimal(got.json()["used_usd"])


async def lower_quota(served: Served, mkey: str, token_id: int, quota: Decimal) -> None:
    async with served.client(mkey) as c:
        got = await c.patch(f"/api/tokens/{token_id}", json={"quota_usd": str(quota)})
    assert got.status_code == 200, got.text


async def debit(served: Served, account_id: int, amount: Decimal) -> None:
    got = await served.admin.post(
        f"/api/users/{account_id}/credit",
        json={"amount_usd": str(-amount), "reason": "chargeback"},
    )
    assert got.status_code == 200, got.text


async def test_a_lowered_quota_binds_the_next_call(served: Served) -> None:
    """The hostile run's repro: quota lowered to what is used plus a hair
    while calls pour in; every call begun after the edit answered is refused,
    and the token ends over its new quota by at most the calls in flight."""
    loop = asyncio.get_running_loop()
    _, mkey, key, token_id = await customer(served, "10", quota_usd="1")
    load = await under_load(served, key)
    read_at = loop.time()
    new_quota = await used_usd(served, mkey, token_id) + TINY
    await lower_quota(served, mkey, token_id, new_quota)
    answered = loop.time()
    await stop(load)
    after = [c for c in load.calls if c.started > answered]
    assert after and all(c.status == 402 for c in after), after
    used = await used_usd(served, mkey, token_id)
    assert used == sum(c.cost for c in load.succeeded())  # (exact, as ever)
    in_flight = sum(c.cost for c in load.succeeded() if c.ended > read_at)
    assert used <= new_quota + in_flight


async def test_a_debit_of_the_whole_balance_binds_the_next_call(served: Served) -> None:
    """Debiting all an account has mid-load: the next call is refused, and the
    balance ends below zero by no more than the calls then in flight."""
    loop = asyncio.get_running_loop()
    account_id, mkey, key, _ = await customer(served, "1")
    load = await under_load(served, key)
    read_at = loop.time()
    balance = Decimal(await served.balance_usd(mkey))
    await debit(served, account_id, balance)
    answered = loop.time()
    await stop(load)
    after = [c for c in load.calls if c.started > answered]
    assert after and all(c.status == 402 for c in after), after
    final = Decimal(await served.balance_usd(mkey))
    assert final == 1 - balance - sum(c.cost for c in load.succeeded())
    in_flight = sum(c.cost for c in load.succeeded() if c.ended > read_at)
    assert -in_flight <= final <= 0


async def test_disabling_a_token_returns_its_reserve_at_once(served: Served) -> None:
    _, mkey, key, token_id = await customer(served, "10")
    assert (await chat(served, key)).status == 200
    async with served.client(mkey) as c:
        me = (await c.get("/api/me")).json()
        assert Decimal(me["held_usd"]) > 0  # the process's lease
        got = await c.patch(f"/api/tokens/{token_id}", json={"enabled": False})
        assert got.status_code == 200, got.text
        me = (await c.get("/api/me")).json()
    assert me["held_usd"] == "0" and me["available_usd"] == me["balance_usd"]


async def test_a_debit_past_the_balance_is_applied_as_asked(served: Served) -> None:
    """A debit is an admin's correction, recorded as asked even below zero;
    the account's calls are then refused until credit brings it back."""
    account_id, mkey, key, _ = await customer(served, "1")
    first = await chat(served, key)
    assert first.status == 200
    await debit(served, account_id, Decimal("1.5"))
    assert Decimal(await served.balance_usd(mkey)) == Decimal("-0.5") - first.cost
    assert (await chat(served, key)).status == 402
    got = await served.admin.post(
        f"/api/users/{account_id}/credit", json={"amount_usd": "1", "reason": "refund"}
    )
    assert got.status_code == 200, got.text
    assert (await chat(served, key)).status == 200


@pytest.mark.parametrize("edit", ["quota", "debit", "disable account"])
async def test_an_edit_through_one_process_binds_the_next_call_on_another(
    database_url: str, catalog_models: list[Model], simulator: Simulator, edit: str
) -> None:
    """Two gateway processes on one database. The other one holds a lease,
    kept busy by a slow call; an edit through the first answers only once the
    other has taken it in, so the other's very next call is bound."""
    settings = test_settings(database_url)
    async with serve(settings, catalog_models) as first, serve(settings, catalog_models) as other:
        await add_channel(first, simulator.base_url)
        account_id, mkey, key, token_id = await customer(first, "1", quota_usd="1")
        for _ in range(100):  # until the other process knows the new channel
            if (await chat(other, key)).status == 200:
                break
            await asyncio.sleep(0.05)
        slow = asyncio.create_task(chat(other, key, "[sim:latency_ms=2000] Hello there"))
        for _ in range(5):
            assert (await chat(other, key)).status == 200
        used = await used_usd(first, mkey, token_id)
        if edit == "quota":
            await lower_quota(first, mkey, token_id, used + TINY)
        elif edit == "debit":
            await debit(first, account_id, Decimal(await first.balance_usd(mkey)))
        else:
            got = await first.admin.patch(f"/api/users/{account_id}", json={"enabled": False})
            assert got.status_code == 200, got.text
        if edit == "disable account":
            async with other.client(key) as c:
                got = await c.post(
                    "/v1/chat/completions",
                    json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                )
            assert got.status_code in (401, 403), got.text
        else:
            assert (await chat(other, key)).status == 402
            assert (await chat(first, key)).status == 402
        finished = await slow
        assert finished.status == 200  # in flight at the edit: it may finish
        assert not other.gw.ledger._leases.by_key or all(
            lease.free <= 0 for lease in other.gw.ledger._leases.by_key.values()
        )
        if edit == "quota":
            final = await used_usd(first, mkey, token_id)
            assert final <= used + TINY + finished.cost


# The ledger underneath: two processes' ledgers on one database.


async def test_a_revoke_returns_every_process_lease_in_one_transaction(
    engine: AsyncEngine,
) -> None:
    async with two_processes(engine) as (first, other):
        a, t = await funded(engine, first, 10**6, quota=10**6)
        assert await first.hold("f", a, t, 1_000, leased=True) is None
        assert await other.hold("o", a, t, 1_000, leased=True) is None
        await first.settle(record("f", a, t, 400))
        assert len(await lease_rows(engine, a)) == 2
        async with engine.begin() as conn:  # the edit: quota down to what is used
            await conn.execute(update(tokens).where(tokens.c.id == t).values(quota_nano=400))
        await first.revoke_leases(token_id=t)
        assert await lease_rows(engine, a) == []  # every reserve freed, the spend folded
        assert await money(engine, a) == (10**6 - 400, 0)
        assert await token_money(engine, t) == (400, 0)
        # this process: bound at once
        assert not first.hold_now("f2", a, t, 1)
        assert await first.hold("f2", a, t, 1, leased=True) == InsufficientFunds(
            "token_quota", 1, 0
        )
        # the other: bound once it looks (the state poller has it look)
        await other.confirm_leases()
        assert not other.hold_now("o2", a, t, 1)
        assert isinstance(await other.hold("o2", a, t, 1, leased=True), InsufficientFunds)
        # its call in flight at the edit finishes, charged directly
        await other.settle(record("o", a, t, 700))
    assert await money(engine, a) == (10**6 - 1_100, 0)
    assert await token_money(engine, t) == (1_100, 0)
    assert await ledger_sum(engine, a) == 10**6 - 1_100


async def test_the_owner_of_a_revoked_lease_finds_out_at_its_next_settle(
    engine: AsyncEngine,
) -> None:
    async with two_processes(engine) as (first, other):
        a, t = await funded(engine, first, 100_000)
        assert await other.hold("o1", a, t, 1_000, leased=True) is None
        assert await other.hold("o2", a, t, 1_000, leased=True) is None
        await first.credit(a, -100_000 + 500, "chargeback")  # a debit revokes
        assert await lease_rows(engine, a) == []
        await other.settle(record("o1", a, t, 300))  # finds its lease gone
        assert not other.hold_now("o3", a, t, 1_000)
        assert isinstance(await other.hold("o3", a, t, 1_000, leased=True), InsufficientFunds)
        await other.settle(record("o2", a, t, 300))
    # below zero by what was in flight at the debit, no more
    assert await money(engine, a) == (500 - 600, 0)
    assert await ledger_sum(engine, a) == 500 - 600


async def test_a_credit_keeps_the_leases(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 10**6)
    assert await book.hold("r", a, t, 1_000, leased=True) is None
    rows = await lease_rows(engine, a)
    assert await book.credit(a, 5, "bonus") == 10**6 + 5
    assert await lease_rows(engine, a) == rows
    assert book.hold_now("r2", a, t, 1_000)
