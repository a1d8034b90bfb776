"""Balance leases (tollway.ledger.leases) on SQLite and PostgreSQL: calls held in
memory against a process's reserve, charges exact to the nano-USD whatever
happens to the lease — grown, returned when idle, reclaimed from a stopped
process, shared by several processes — and never more held than there is."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from test_ledger import account, funded, ledger_sum, money, record

from tollway.db.schema import leases, tokens, usage_records
from tollway.ledger import InsufficientFunds, Ledger
from tollway.ledger import leases as leases_module
from tollway.ledger.leases import LEASE_SHARE


async def lease_rows(engine: AsyncEngine, account_id: int) -> list[tuple[int, int, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(leases.c.amount_nano, leases.c.spent_nano, leases.c.owner).where(
                leases.c.account_id == account_id
            )
        )
        return [(int(a), int(s), o) for a, s, o in rows]


async def effective(engine: AsyncEngine, account_id: int) -> int:
    """The balance as the API shows it: balance_nano less what leases spent."""
    balance, _ = await money(engine, account_id)
    return balance - sum(spent for _, spent, _ in await lease_rows(engine, account_id))


async def token_money(engine: AsyncEngine, token_id: int) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(tokens.c.used_nano, tokens.c.held_nano).where(tokens.c.id == token_id)
            )
        ).one()
    return int(row[0]), int(row[1])


async def usage_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(usage_records))).scalar_one()
        )


async def age_leases(engine: AsyncEngine) -> None:
    """Every lease looks abandoned: not renewed for longer than STALE_S."""
    old = datetime.now(UTC) - timedelta(seconds=leases_module.STALE_S + 5)
    async with engine.begin() as conn:
        await conn.execute(update(leases).values(renewed_at=old))


@contextlib.asynccontextmanager
async def two_processes(engine: AsyncEngine) -> AsyncIterator[tuple[Ledger, Ledger]]:
    """Two started ledgers on one database, as two gateway processes have;
    both stopped (their leases returned) on the way out."""
    first, other = Ledger(engine), Ledger(engine)
    await first.start()
    await other.start()
    try:
        yield first, other
    finally:
        await first.stop()
        await other.stop()


async def test_a_leased_call_commits_its_charge_and_folds_back(
    engine: AsyncEngine, book: Ledger
) -> None:
    a, t = await funded(engine, book, 1_000_000)
    assert await book.hold("r1", a, t, 600, leased=True) is None
    [(amount, spent, _owner)] = await lease_rows(engine, a)
    # the lease reserves more than the call, in the database, as held money
    assert amount >= 600 and spent == 0
    assert await money(engine, a) == (1_000_000, amount)
    settled = await book.settle(record("r1", a, t, 250))
    assert (settled.cost_nano, settled.already_settled) == (250, False)
    # durable before the caller hears back: record, ledger entry, lease spend
    assert await usage_count(engine) == 1
    assert await effective(engine, a) == 1_000_000 - 250
    assert await ledger_sum(engine, a) == 1_000_000 - 250
    again = await book.settle(record("r1", a, t, 250))
    assert (again.cost_nano, again.already_settled) == (250, True)
    await book.stop()  # returns the lease
    assert await lease_rows(engine, a) == []
    assert await money(engine, a) == (1_000_000 - 250, 0)
    assert await token_money(engine, t) == (250, 0)
    assert await usage_count(engine) == 1
    await book.start()


async def test_a_second_settle_while_the_first_commits_is_not_charged(
    engine: AsyncEngine, book: Ledger
) -> None:
    a, t = await funded(engine, book, 1_000_000)
    assert await book.hold("r1", a, t, 600, leased=True) is None
    first, second = await asyncio.gather(
        book.settle(record("r1", a, t, 300)), book.settle(record("r1", a, t, 300))
    )
    assert {first.already_settled, second.already_settled} == {False, True}
    assert first.cost_nano == second.cost_nano == 300
    assert await effective(engine, a) == 1_000_000 - 300
    assert await usage_count(engine) == 1


async def test_release_of_a_leased_call_charges_nothing(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 1_000_000)
    assert await book.hold("r1", a, t, 600, leased=True) is None
    released = await book.release(record("r1", a, t, 999))
    assert released.cost_nano == 0
    assert await effective(engine, a) == 1_000_000
    async with engine.connect() as conn:
        status = (await conn.execute(select(usage_records.c.cost_nano))).scalar_one()
    assert status == 0


async def test_leased_holds_never_exceed_the_balance(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 1_000)
    results = await asyncio.gather(*(book.hold(f"r{i}", a, t, 30, leased=True) for i in range(100)))
    assert sum(r is None for r in results) == 33  # 33 × 30 = 990 ≤ 1,000 < 34 × 30
    refusals = [r for r in results if r is not None]
    assert all(r.scope == "balance" and r.needed_nano == 30 for r in refusals)
    assert all(r.available_nano == 10 for r in refusals)  # what is truly left
    balance, held = await money(engine, a)
    assert balance == 1_000 and held <= 1_000


async def test_a_token_quota_bounds_its_leases(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 10**9, quota=500)
    assert await book.hold("r1", a, t, 300, leased=True) is None
    short = await book.hold("r2", a, t, 300, leased=True)
    assert isinstance(short, InsufficientFunds)
    assert (short.scope, short.needed_nano, short.available_nano) == ("token_quota", 300, 200)
    assert await book.hold("r3", a, t, 200, leased=True) is None
    _, token_held = await token_money(engine, t)
    assert token_held <= 500


async def test_a_lease_takes_a_share_of_what_is_spare(engine: AsyncEngine, book: Ledger) -> None:
    """A new lease asks for many calls' worth, but not more than 1/LEASE_SHARE
    of the spare money, so other processes find some; it grows as calls come,
    down to the last nano-USD, and no further."""
    spare = 80_000
    a, t = await funded(engine, book, spare)
    assert await book.hold("r1", a, t, 1_000, leased=True) is None
    [(amount, _, _)] = await lease_rows(engine, a)
    assert spare // LEASE_SHARE < 1_000 * leases_module.START_CALLS  # the share binds
    assert amount == spare // LEASE_SHARE
    for i in range(2, 81):
        assert await book.hold(f"r{i}", a, t, 1_000, leased=True) is None
    [(amount, _, _)] = await lease_rows(engine, a)
    assert amount == spare
    assert await book.hold("r81", a, t, 1, leased=True) == InsufficientFunds("balance", 1, 0)


async def test_charges_above_the_hold_are_reserved_and_exact(
    engine: AsyncEngine, book: Ledger
) -> None:
    a, t = await funded(engine, book, 10**9)
    assert await book.hold("r1", a, t, 100, leased=True) is None
    [(amount, _, _)] = await lease_rows(engine, a)
    big = amount + 5_000  # the upstream reported more than the worst case held
    await book.settle(record("r1", a, t, big))
    [(amount_after, spent, _)] = await lease_rows(engine, a)
    assert spent == big and amount_after >= spent
    assert await effective(engine, a) == 10**9 - big
    await book.stop()
    assert await money(engine, a) == (10**9 - big, 0)
    assert await token_money(engine, t) == (big, 0)
    await book.start()


async def test_an_idle_lease_is_returned(
    engine: AsyncEngine, book: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leases_module, "IDLE_S", 0.2)  # (read at every tick)
    monkeypatch.setattr(leases_module, "TICK_S", 0.05)
    a, t = await funded(engine, book, 10**6)
    assert await book.hold("r1", a, t, 500, leased=True) is None
    await book.settle(record("r1", a, t, 123))
    assert len(await lease_rows(engine, a)) == 1
    for _ in range(100):
        await asyncio.sleep(0.05)
        if not await lease_rows(engine, a):
            break
    assert await lease_rows(engine, a) == []
    assert await money(engine, a) == (10**6 - 123, 0)
    assert await token_money(engine, t) == (123, 0)


async def test_the_lease_of_a_stopped_process_is_reclaimed_and_late_charges_still_land(
    engine: AsyncEngine,
) -> None:
    """Process A takes a lease and stops renewing it (it hangs or died);
    another process's reconciler returns it. A call A still settles after
    that charges the account directly: nothing lost, nothing twice."""
    async with two_processes(engine) as (first, other):
        a, t = await funded(engine, first, 10**6)
        assert await first.hold("done", a, t, 500, leased=True) is None
        assert await first.hold("in-flight", a, t, 500, leased=True) is None
        await first.settle(record("done", a, t, 200))
        await age_leases(engine)
        await other.release_stale_holds(timedelta(hours=1))
        assert await lease_rows(engine, a) == []
        assert await money(engine, a) == (10**6 - 200, 0)
        await first.settle(record("in-flight", a, t, 300))  # after its lease went
        assert await money(engine, a) == (10**6 - 500, 0)
        assert await ledger_sum(engine, a) == 10**6 - 500
        # the next call takes a new lease
        assert await first.hold("next", a, t, 500, leased=True) is None
        await first.settle(record("next", a, t, 1))
        assert await effective(engine, a) == 10**6 - 501
    assert await money(engine, a) == (10**6 - 501, 0)
    assert await token_money(engine, t) == (501, 0)
    assert await usage_count(engine) == 3


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"], ids=["inline", "thread"])
async def test_several_processes_share_an_account_exactly(
    engine: AsyncEngine, synchronous: str
) -> None:
    """Three ledgers (as three worker processes) on one database, each with
    its own lease on one account, many calls at once: the balance drop is
    the sum of the costs, to the nano-USD, and one record per call. (On
    SQLite, synchronous=FULL puts the ledger's writer on a thread; on
    PostgreSQL it always is there.)"""
    books = [Ledger(engine, synchronous=synchronous) for _ in range(3)]
    for b in books:
        await b.start()
    a, t = await funded(engine, books[0], 10**9)

    async def call(b: Ledger, i: int) -> int:
        rid = f"c{i}"
        assert await b.hold(rid, a, t, 5_000, leased=True) is None
        cost = 1_000 + i % 977
        if i % 10 == 0:
            await b.release(record(rid, a, t, 0))
            return 0
        await b.settle(record(rid, a, t, cost))
        return cost

    try:
        costs = await asyncio.gather(*(call(books[i % 3], i) for i in range(600)))
        owners = {owner for _, _, owner in await lease_rows(engine, a)}
        assert len(owners) == 3  # each process its own lease
        assert await effective(engine, a) == 10**9 - sum(costs)
    finally:
        for b in books:
            await b.stop()
    assert await money(engine, a) == (10**9 - sum(costs), 0)
    assert await token_money(engine, t) == (sum(costs), 0)
    assert await ledger_sum(engine, a) == 10**9 - sum(costs)
    assert await usage_count(engine) == 600


async def test_db_holds_and_leases_share_the_same_money(engine: AsyncEngine, book: Ledger) -> None:
    """A video's hold (a row any process settles) and leased calls draw on
    the same balance: neither can take what the other holds."""
    a, t = await funded(engine, book, 10_000)
    assert await book.hold("video", a, t, 6_000) is None
    short = await book.hold("chat", a, t, 5_000, leased=True)
    assert isinstance(short, InsufficientFunds) and short.available_nano == 4_000
    assert await book.hold("chat", a, t, 4_000, leased=True) is None
    assert await book.hold("video-2", a, t, 1) is not None
    await book.settle(record("chat", a, t, 4_000))
    await book.settle(record("video", a, t, 6_000))
    assert await effective(engine, a) == 0


async def test_an_account_without_leases_reads_as_before(engine: AsyncEngine) -> None:
    a, _ = await account(engine, 0)
    assert await effective(engine, a) == 0


async def test_what_a_lease_spent_is_gone_from_it(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 1_000)
    for i in range(10):
        assert await book.hold(f"r{i}", a, t, 100, leased=True) is None
        await book.settle(record(f"r{i}", a, t, 100))
    short = await book.hold("r10", a, t, 1, leased=True)
    assert short == InsufficientFunds("balance", 1, 0)
    assert await effective(engine, a) == 0


async def test_a_grow_and_a_close_of_a_reclaimed_lease_in_one_batch(engine: AsyncEngine) -> None:
    """The lease goes (reclaimed); in one batch a call settles on it (charged
    directly) and another grows it (a new row). The new row is kept, used and
    returned: no reserve is left orphaned."""
    async with two_processes(engine) as (first, other):
        a, t = await funded(engine, first, 10**6)
        assert await first.hold("in-flight", a, t, 500, leased=True) is None
        await age_leases(engine)
        await other.release_stale_holds(timedelta(hours=1))
        assert await lease_rows(engine, a) == []
        held, settled = await asyncio.gather(
            first.hold("big", a, t, 50_000, leased=True), first.settle(record("in-flight", a, t, 7))
        )
        assert held is None and settled.cost_nano == 7
        [(amount, _, owner)] = await lease_rows(engine, a)
        assert amount >= 50_000 and owner == first._leases.owner
        await first.settle(record("big", a, t, 40_000))
    assert await lease_rows(engine, a) == []
    assert await money(engine, a) == (10**6 - 40_007, 0)
    assert await token_money(engine, t) == (40_007, 0)


async def test_a_process_finds_out_its_lease_was_reclaimed_before_spending_it(
    engine: AsyncEngine,
) -> None:
    """A stalled process (no renewals) loses its lease to the reconciler. Its
    next renewal finds the row gone, so it stops holding against it: the
    money went back to the account, where another process may take it."""
    async with two_processes(engine) as (first, other):
        a, t = await funded(engine, first, 100_000)
        assert await first.hold("in-flight", a, t, 1_000, leased=True) is None
        await age_leases(engine)
        await other.release_stale_holds(timedelta(hours=1))
        # the other process may now reserve everything the account has
        assert await other.hold("elsewhere", a, t, 100_000, leased=True) is None
        [lease] = first._leases.by_key.values()
        lease.last_renewed -= leases_module.RENEW_S + 1  # due for renewal
        await first._leases._tend()
        assert lease.id is None  # it knows
        short = await first.hold("more", a, t, 1_000, leased=True)
        assert isinstance(short, InsufficientFunds) and short.available_nano == 0
        await other.release(record("elsewhere", a, t, 0))
        await first.settle(record("in-flight", a, t, 900))  # charged directly
    assert await money(engine, a) == (100_000 - 900, 0)
    assert await lease_rows(engine, a) == []


async def test_a_lease_not_renewed_for_long_is_checked_before_use(engine: AsyncEngine) -> None:
    async with two_processes(engine) as (book_a, book_b):
        a, t = await funded(engine, book_a, 100_000)
        assert await book_a.hold("r1", a, t, 1_000, leased=True) is None
        await book_a.settle(record("r1", a, t, 10))
        await age_leases(engine)
        await book_b.release_stale_holds(timedelta(hours=1))
        assert await book_b.hold("b", a, t, 99_990, leased=True) is None
        [lease] = book_a._leases.by_key.values()
        lease.last_renewed -= leases_module.UNCONFIRMED_S + 1  # stalled
        lease.last_used = lease.last_renewed + 1_000  # (not idle)
        assert lease.free >= 1_000  # memory still thinks there is money
        assert isinstance(await book_a.hold("r2", a, t, 1_000, leased=True), InsufficientFunds)
        await book_b.settle(record("b", a, t, 99_990))
    assert await money(engine, a) == (0, 0)


async def test_an_orphaned_lease_of_this_very_process_is_reclaimed(
    engine: AsyncEngine, book: Ledger
) -> None:
    a, t = await funded(engine, book, 10**6)
    assert await book.hold("r1", a, t, 1_000, leased=True) is None
    await book.settle(record("r1", a, t, 300))
    book._leases.by_key.clear()  # lost track of it (a failed return, say)
    await age_leases(engine)
    await book.release_stale_holds(timedelta(hours=1))
    assert await lease_rows(engine, a) == []
    assert await money(engine, a) == (10**6 - 300, 0)


async def test_a_lease_started_by_a_free_call_still_covers_many_calls(
    engine: AsyncEngine, book: Ledger
) -> None:
    """A lease first taken for a free call (hold 0) has no size to go by; the
    first paid call sizes it for many calls, not a grow per call."""
    a, t = await funded(engine, book, 10**9)
    assert await book.hold("free", a, t, 0, leased=True) is None
    assert await book.hold("paid", a, t, 1_000, leased=True) is None
    [(amount, _, _)] = await lease_rows(engine, a)
    assert amount >= 1_000 * leases_module.START_CALLS


async def test_a_hold_the_lease_has_room_for_is_taken_at_once(
    engine: AsyncEngine, book: Ledger
) -> None:
    """hold_now (the relay's first try) holds in memory without a task or a
    write when the lease has room, and declines — leaving hold() to grow or
    confirm the lease — when there is none, no room, or the lease is stale."""
    a, t = await funded(engine, book, 1_000_000)
    assert not book.hold_now("first", a, t, 1_000)  # no lease yet: hold() takes one
    assert await book.hold("first", a, t, 1_000, leased=True) is None
    [lease] = book._leases.by_key.values()
    rows_before = await lease_rows(engine, a)
    assert book.hold_now("second", a, t, 1_000)
    assert lease.inflight == 2_000
    assert await lease_rows(engine, a) == rows_before  # nothing written to hold it
    assert not book.hold_now("too big", a, t, lease.free + 1)
    lease.last_renewed -= leases_module.UNCONFIRMED_S + 1
    assert not book.hold_now("stale", a, t, 1)
    lease.last_renewed += leases_module.UNCONFIRMED_S + 1
    await book.settle(record("first", a, t, 700))
    await book.settle(record("second", a, t, 300))
    assert lease.inflight == 0
    assert await effective(engine, a) == 1_000_000 - 1_000
    assert await ledger_sum(engine, a) == 1_000_000 - 1_000
