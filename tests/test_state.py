"""The shared state's processes: each says which version it has taken in, and
an edit waits until every live one has (tollway.state.until_seen)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway import state as state_module
from tollway.db.schema import processes, state_version
from tollway.state import LIVE_S, State
from tollway.timeutil import utcnow

POLL_MS = 50


async def seen(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(processes.c.id, processes.c.seen_version))
    return {row.id: row.seen_version for row in rows}


async def bump(state: State) -> None:
    async with state._engine.begin() as conn:
        await state.changed(conn)


async def test_a_process_says_what_it_has_seen_and_leaves_at_stop(engine: AsyncEngine) -> None:
    one = State(engine, [], POLL_MS)
    await one.start()
    try:
        before = one._version
        assert (await seen(engine))[one.process_id] == before
        await bump(one)
        for _ in range(100):
            if (await seen(engine))[one.process_id] == before + 1:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the poll did not report the new version")
    finally:
        await one.stop()
    assert one.process_id not in await seen(engine)


async def test_a_start_forgets_processes_killed_long_ago(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        old = utcnow() - timedelta(seconds=state_module.FORGET_S + 1)
        await conn.execute(insert(processes).values(id="killed", seen_version=0, seen_at=old))
        recent = utcnow() - timedelta(seconds=LIVE_S + 1)
        await conn.execute(insert(processes).values(id="recent", seen_version=0, seen_at=recent))
    one = State(engine, [], POLL_MS)
    await one.start()
    try:
        assert set(await seen(engine)) == {one.process_id, "recent"}
    finally:
        await one.stop()


async def test_an_edit_waits_until_every_live_process_has_seen_it(engine: AsyncEngine) -> None:
    editor, other = State(engine, [], POLL_MS), State(engine, [], POLL_MS)
    await editor.start()
    await other.start()
    try:
        await bump(editor)
        assert await editor.until_seen()
        assert (await seen(engine))[other.process_id] == await current_version(engine)
    finally:
        await other.stop()
        await editor.stop()


async def test_a_stalled_process_delays_an_edit_only_so_long(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_module, "SEEN_WAIT_S", 0.3)
    editor = State(engine, [], POLL_MS)
    await editor.start()
    async with engine.begin() as conn:  # alive, never polling: stalled
        await conn.execute(
            insert(processes).values(id="stalled", seen_version=-1, seen_at=utcnow())
        )
        gone = utcnow() - timedelta(seconds=LIVE_S + 1)  # a stopped one is not waited for
        await conn.execute(insert(processes).values(id="gone", seen_version=-1, seen_at=gone))
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert not await editor.until_seen()
        assert 0.3 <= loop.time() - started < 2
        async with engine.begin() as conn:
            await conn.execute(processes.delete().where(processes.c.id == "stalled"))
        assert await editor.until_seen()
    finally:
        await editor.stop()


async def current_version(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(state_version.c.version))).scalar_one())
