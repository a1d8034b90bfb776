"""The ledger's writers (tollway.ledger.writers): which one the ledger picks,
each committing steps, and the inline one beside writers outside the ledger
on one SQLite file (the management API through SQLAlchemy, the CLI): the
event loop never waits on SQLite's lock itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update
from test_ledger import account, funded

from tollway.db.engine import make_engine, migrate
from tollway.db.schema import tokens
from tollway.ledger import Ledger
from tollway.ledger.dialects import Dialect, PostgresDialect, SqliteDialect, connector
from tollway.ledger.steps import Credit
from tollway.ledger.writers import InlineWriter, ThreadWriter, Writer, writer_for


async def test_an_edit_holding_sqlites_lock_does_not_stall_the_ledger(tmp_path: Path) -> None:
    """A management edit through SQLAlchemy holds SQLite's write lock across
    awaits on this very loop. The ledger's writer, also on the loop, must not
    wait for the lock there (the edit could not commit meanwhile: every call
    and the edit stalled for the whole busy timeout): a thread waits."""
    engine = make_engine(f"sqlite:///{tmp_path / 'tollway.db'}")
    await migrate(engine)
    book = Ledger(engine)
    await book.start()
    try:
        a, t = await funded(engine, book, 10**6)
        loop = asyncio.get_running_loop()
        async with engine.begin() as conn:
            await conn.execute(update(tokens).where(tokens.c.id == t).values(quota_nano=10**5))
            credited = asyncio.ensure_future(book.credit(a, 5, "meanwhile"))
            started = loop.time()
            await asyncio.sleep(0.05)  # the loop goes on while the writer waits
            assert loop.time() - started < 1
            assert not credited.done()
        assert await asyncio.wait_for(credited, 5) == 10**6 + 5
    finally:
        await book.stop()
        await engine.dispose()


@pytest.mark.parametrize(
    ("dialect", "synchronous", "picked"),
    [
        (SqliteDialect(), "OFF", InlineWriter),
        (SqliteDialect(), "NORMAL", InlineWriter),
        (SqliteDialect(), "FULL", ThreadWriter),  # a commit waits for the disk: not on the loop
        (SqliteDialect(), "EXTRA", ThreadWriter),
        (PostgresDialect(), "NORMAL", ThreadWriter),  # a statement is a round trip
    ],
)
def test_the_ledger_picks_its_writer(dialect: Dialect, synchronous: str, picked: type) -> None:
    assert writer_for(dialect, synchronous) is picked


@pytest.mark.parametrize("writer_class", [InlineWriter, ThreadWriter])
async def test_each_writer_commits_steps_in_order(
    tmp_path: Path, writer_class: type[Writer]
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'tollway.db'}")
    await migrate(engine)
    a, _ = await account(engine, 0)
    connect, dialect = connector(engine, "NORMAL")
    writer = writer_class(connect, dialect, max_batch=8)
    await writer.start()
    try:
        written = [writer.submit(Credit(a, 10, "test")) for _ in range(20)]
        balances = [await w for w in written]
    finally:
        await writer.stop()
        await engine.dispose()
    assert balances == [10 * n for n in range(1, 21)]


def test_the_inline_writer_writes_sqlite_only() -> None:
    with pytest.raises(ValueError):
        InlineWriter(lambda busy_wait=True: None, PostgresDialect())
