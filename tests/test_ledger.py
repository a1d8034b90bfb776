"""The ledger on SQLite and PostgreSQL: holds, idempotent settlement, releases,
group commit, and balances that always follow from the entries."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.db.engine import make_engine, migrate
from tollway.db.schema import accounts, holds, ledger, tokens, usage_records
from tollway.ledger import InsufficientFunds, Ledger, LedgerError, UsageRecord
from tollway.types import Usage


async def account(
    engine: AsyncEngine, balance_nano: int, quota_nano: int | None = None
) -> tuple[int, int]:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        account_id = (
            await conn.execute(
                insert(accounts)
                .values(
                    username=f"a{now.timestamp()}",
                    role="user",
                    balance_nano=0,
                    held_nano=0,
                    enabled=True,
                    created_at=now,
                )
                .returning(accounts.c.id)
            )
        ).scalar_one()
        token_id = (
            await conn.execute(
                insert(tokens)
                .values(
                    account_id=account_id,
                    name="t",
                    key_hash=f"h{now.timestamp()}",
                    key_prefix="sk-",
                    billing_mode="pay_per_use_priority",
                    quota_nano=quota_nano,
                    used_nano=0,
                    held_nano=0,
                    enabled=True,
                    deleted=False,
                    created_at=now,
                    updated_at=now,
                )
                .returning(tokens.c.id)
            )
        ).scalar_one()
    return account_id, token_id


async def funded(
    engine: AsyncEngine, book: Ledger, nano: int, quota: int | None = None
) -> tuple[int, int]:
    account_id, token_id = await account(engine, 0, quota)
    await book.credit(account_id, nano, "test")
    return account_id, token_id


def record(request_id: str, account_id: int, token_id: int, cost: int) -> UsageRecord:
    return UsageRecord(
        request_id,
        account_id,
        token_id,
        "gpt-4o",
        "chat/completions",
        "pay_per_use_priority",
        "per_use",
        Usage(input_tokens=1),
        {},
        cost,
    )


async def money(engine: AsyncEngine, account_id: int) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(accounts.c.balance_nano, accounts.c.held_nano).where(
                    accounts.c.id == account_id
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def ledger_sum(engine: AsyncEngine, account_id: int) -> int:
    async with engine.connect() as conn:
        total = (
            await conn.execute(
                select(func.sum(ledger.c.amount_nano)).where(
                    ledger.c.account_id == account_id,
                    ledger.c.kind.in_(("credit", "debit", "settle")),
                )
            )
        ).scalar()
    return int(total or 0)


async def test_hold_settle_and_idempotency(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 1_000)
    assert await book.hold("r1", a, t, 600) is None
    assert await money(engine, a) == (1_000, 600)
    first = await book.settle(record("r1", a, t, 250))
    again = await book.settle(record("r1", a, t, 250))
    assert (first.cost_nano, first.already_settled) == (250, False)
    assert (again.cost_nano, again.already_settled) == (250, True)
    assert await money(engine, a) == (750, 0)
    assert await ledger_sum(engine, a) == 750
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(usage_records))).scalar() == 1
        used = (
            await conn.execute(
                select(tokens.c.used_nano, tokens.c.held_nano).where(tokens.c.id == t)
            )
        ).one()
    assert tuple(used) == (250, 0)


async def test_release_returns_everything_once(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 1_000)
    await book.hold("r1", a, t, 900)
    await book.release(record("r1", a, t, 0))
    assert await money(engine, a) == (1_000, 0)
    settled_after = await book.settle(record("r1", a, t, 500))  # too late: already closed
    assert settled_after.already_settled and settled_after.cost_nano == 0
    assert await money(engine, a) == (1_000, 0)


async def test_hold_that_does_not_fit(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 1_000)
    await book.hold("r1", a, t, 700)
    short = await book.hold("r2", a, t, 301)
    assert short == InsufficientFunds("balance", 301, 300)
    assert await money(engine, a) == (1_000, 700)


async def test_token_quota_refusal_leaves_the_account_untouched(
    engine: AsyncEngine, book: Ledger
) -> None:
    a, t = await funded(engine, book, 10_000, quota=500)
    short = await book.hold("r1", a, t, 501)
    assert short == InsufficientFunds("token_quota", 501, 500)
    assert await money(engine, a) == (10_000, 0)
    assert await book.hold("r2", a, t, 500) is None


async def test_a_failing_step_fails_alone(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 10_000)
    for i in range(5):
        assert await book.hold(f"r{i}", a, t, 100) is None
    results = await asyncio.gather(
        *(book.settle(record(f"r{i}", a, t, 10)) for i in range(5)),
        book.settle(record("never-held", a, t, 10)),
        return_exceptions=True,
    )
    assert [r.cost_nano for r in results[:5]] == [10] * 5  # type: ignore[union-attr]
    assert isinstance(results[5], LedgerError)
    assert await money(engine, a) == (9_950, 0)


async def test_concurrent_holds_never_overspend(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 1_000)
    results = await asyncio.gather(*(book.hold(f"r{i}", a, t, 30) for i in range(100)))
    assert sum(r is None for r in results) == 33
    assert await money(engine, a) == (1_000, 990)


async def test_negative_amounts_are_refused(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 100)
    with pytest.raises(LedgerError):
        await book.hold("r", a, t, -1)
    with pytest.raises(LedgerError):
        await book.settle(record("r", a, t, -1))


async def test_debit_and_unknown_account(engine: AsyncEngine, book: Ledger) -> None:
    a, _ = await funded(engine, book, 100)
    assert await book.credit(a, -40, "refund") == 60
    with pytest.raises(LedgerError):
        await book.credit(999_999, 1, "nobody")


async def test_stale_holds_are_released(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 1_000)
    await book.hold("old", a, t, 400)
    await book.hold("new", a, t, 100)
    async with engine.begin() as conn:
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        await conn.execute(
            update(holds).where(holds.c.request_id == "old").values(created_at=an_hour_ago)
        )
    assert await book.release_stale_holds(timedelta(minutes=10)) == 1
    assert await money(engine, a) == (1_000, 100)
    async with engine.connect() as conn:
        status = (
            await conn.execute(
                select(usage_records.c.status).where(usage_records.c.request_id == "old")
            )
        ).scalar()
    assert status == "abandoned"


async def test_stop_finishes_queued_steps(engine: AsyncEngine) -> None:
    book = Ledger(engine)
    await book.start()
    a, _ = await account(engine, 0)
    pending = [asyncio.create_task(book.credit(a, 1, "x")) for _ in range(50)]
    await asyncio.sleep(0)
    await book.stop()
    assert [p.result() for p in pending][-1] == 50
    with pytest.raises(LedgerError):
        await book.credit(a, 1, "after stop")


def test_schema_head_constant_matches_alembic() -> None:
    from alembic.script import ScriptDirectory

    from tollway.db.engine import SCHEMA_HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD


async def test_one_batch_of_holds_fits_exactly_as_many_as_the_quota_allows(
    engine: AsyncEngine, book: Ledger
) -> None:
    a, t = await funded(engine, book, 10_000, quota=100)
    results = await asyncio.gather(*(book.hold(f"r{i}", a, t, 30) for i in range(5)))
    assert [r is None for r in results] == [True, True, True, False, False]
    assert await money(engine, a) == (10_000, 90)
    async with engine.connect() as conn:
        held = (await conn.execute(select(tokens.c.held_nano).where(tokens.c.id == t))).scalar()
    assert held == 90


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"], ids=["inline", "thread"])
async def test_both_writers_keep_the_books_exact(engine: AsyncEngine, synchronous: str) -> None:
    """On SQLite, synchronous=FULL puts the writer on a thread (NORMAL: the
    event loop); on PostgreSQL it always is on a thread."""
    book = Ledger(engine, synchronous=synchronous)
    await book.start()
    try:
        a, t = await funded(engine, book, 10_000)
        holds_ok = await asyncio.gather(*(book.hold(f"w{i}", a, t, 100) for i in range(50)))
        assert all(r is None for r in holds_ok)
        await asyncio.gather(*(book.settle(record(f"w{i}", a, t, i)) for i in range(50)))
        assert await money(engine, a) == (10_000 - sum(range(50)), 0)
        assert await ledger_sum(engine, a) == 10_000 - sum(range(50))
    finally:
        await book.stop()


@contextlib.asynccontextmanager
async def sqlite_file_ledger(tmp_path: Any) -> AsyncIterator[tuple[str, AsyncEngine, Ledger]]:
    """A started ledger on a SQLite file of its own (its log can be read)."""
    path = str(tmp_path / "ledger.db")
    eng = make_engine(f"sqlite:///{path}")
    await migrate(eng)
    book = Ledger(eng)
    await book.start()
    try:
        yield path, eng, book
    finally:
        await book.stop()
        await eng.dispose()


def _wal_salt(path: str) -> int:
    """Salt-1 of a SQLite WAL file's header: SQLite adds one to it each time
    the log starts over from its first frame (https://sqlite.org/fileformat.html)."""
    with open(path + "-wal", "rb") as f:
        header = f.read(32)
    return int.from_bytes(header[16:20], "big")


async def test_the_sqlite_log_starts_over_under_sustained_writes(tmp_path: Any) -> None:
    """Under load the writer never pauses, so a checkpoint that only copies
    the frames the log held when it began never catches up: the log used to
    grow by every page written (hundreds of MB a minute). It must start over."""
    async with sqlite_file_ledger(tmp_path) as (path, eng, book):
        a, t = await funded(eng, book, 10**15)
        first = _wal_salt(path)
        deadline = time.monotonic() + 1.5
        n = 0
        while time.monotonic() < deadline:
            assert await book.hold(f"s{n}", a, t, 1_000) is None
            await book.settle(record(f"s{n}", a, t, 500))
            n += 1
        restarts = _wal_salt(path) - first
        assert restarts >= 2, f"{n} calls, the log started over {restarts} times"
        assert await money(eng, a) == (10**15 - 500 * n, 0)


async def settle_waits_while_the_loop_goes_on(
    book: Ledger, settled: UsageRecord
) -> asyncio.Future[Any]:
    """Settle while someone else has the writers' turn: for 0.2 s the settle
    must not commit, and the event loop must keep turning meanwhile."""
    settle = asyncio.ensure_future(book.settle(settled))
    started = time.monotonic()
    turns_of_the_loop = 0
    while time.monotonic() - started < 0.2:
        await asyncio.sleep(0)
        turns_of_the_loop += 1
    assert not settle.done(), "committed while another writer had the turn"
    assert turns_of_the_loop > 100, "the event loop waited for the turn"
    return settle


async def test_a_checkpoint_in_the_writers_turn_never_blocks_the_event_loop(tmp_path: Any) -> None:
    """The checkpointer syncs the files to disk (milliseconds on a slow disk)
    while it holds the writers' turn. The inline writer runs on the event
    loop, so it must not wait for the turn there: other requests go on, and
    the settle commits as soon as the turn is given back."""
    async with sqlite_file_ledger(tmp_path) as (_path, eng, book):
        a, t = await funded(eng, book, 10_000)
        assert await book.hold("turn", a, t, 1_000) is None
        turn = book._writer.checkpointer.turn  # type: ignore[attr-defined]
        taken = threading.Event()
        give_back = threading.Event()

        def checkpointer() -> None:  # as the checkpointer thread does
            turn.take()
            taken.set()
            give_back.wait(10)
            turn.give()

        thread = threading.Thread(target=checkpointer)
        thread.start()
        assert taken.wait(5)
        settle = await settle_waits_while_the_loop_goes_on(book, record("turn", a, t, 400))
        give_back.set()
        await asyncio.wait_for(settle, 5)
        thread.join()
        assert await money(eng, a) == (10_000 - 400, 0)


async def test_another_process_holding_the_writers_turn_never_blocks_the_event_loop(
    tmp_path: Any,
) -> None:
    """Workers of `tollway serve --workers N` (and the CLI) write one SQLite
    file and take turns through its lock file. While another process has the
    turn, this one's event loop goes on; its settle commits as soon as the
    turn is free, and nothing is lost or counted twice."""
    async with sqlite_file_ledger(tmp_path) as (path, eng, book):
        a, t = await funded(eng, book, 10_000)
        assert await book.hold("other", a, t, 1_000) is None
        holder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('taken', flush=True)\n"
            "sys.stdin.readline()\n",
            path + "-tollway-writer.lock",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert await asyncio.wait_for(holder.stdout.readline(), 10) == b"taken\n"
            settle = await settle_waits_while_the_loop_goes_on(book, record("other", a, t, 400))
            holder.stdin.write(b"\n")
            await holder.stdin.drain()
            assert (await asyncio.wait_for(settle, 5)).cost_nano == 400
        finally:
            with contextlib.suppress(ProcessLookupError):
                holder.kill()
            await holder.wait()
        assert await money(eng, a) == (10_000 - 400, 0)
        async with eng.connect() as conn:
            count = select(func.count()).select_from(usage_records)
            assert (await conn.execute(count)).scalar_one() == 1
