"""The ledger's writer beside writers outside it on one SQLite file (the
management API through SQLAlchemy, the CLI): the event loop never waits on
SQLite's lock itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import update
from test_ledger import funded

from tollway.db.engine import make_engine, migrate
from tollway.db.schema import tokens
from tollway.ledger import Ledger


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
