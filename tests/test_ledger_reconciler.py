"""The stale-hold sweep (tollway.ledger.reconciler): holds a stopped process
left open are released, holds that outlive their request (a video job's) are
left to whatever closes them; and the migration that marks the holds of video
jobs already running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from test_ledger import funded, money, record

from tollway.db.engine import alembic_config, make_engine
from tollway.db.schema import holds, usage_records, video_jobs
from tollway.ledger import Ledger, LedgerError, UsageStatus


async def age(engine: AsyncEngine, *request_ids: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(holds)
            .where(holds.c.request_id.in_(request_ids))
            .values(created_at=datetime.now(UTC) - timedelta(hours=1))
        )


async def test_a_hold_that_outlives_its_request_is_never_stale(
    engine: AsyncEngine, book: Ledger
) -> None:
    a, t = await funded(engine, book, 1_000)
    assert await book.hold("video", a, t, 400, outlives_request=True) is None
    assert await book.hold("call", a, t, 100) is None
    await age(engine, "video", "call")
    assert await book.release_stale_holds(timedelta(minutes=10)) == 1
    assert await money(engine, a) == (1_000, 400)
    settled = await book.settle(record("video", a, t, 300))  # its job closes it, late
    assert (settled.cost_nano, settled.already_settled) == (300, False)
    assert await money(engine, a) == (700, 0)


async def test_a_leased_hold_cannot_outlive_its_request(engine: AsyncEngine, book: Ledger) -> None:
    a, t = await funded(engine, book, 1_000)
    with pytest.raises(LedgerError):
        await book.hold("call", a, t, 100, leased=True, outlives_request=True)


async def test_a_record_keeps_its_status_as_the_plain_string(
    engine: AsyncEngine, book: Ledger
) -> None:
    a, t = await funded(engine, book, 1_000)
    await book.hold("cut", a, t, 100)
    cut = record("cut", a, t, 40)
    cut.status = UsageStatus.UPSTREAM_INTERRUPTED
    await book.settle(cut)
    async with engine.connect() as conn:
        found = await conn.execute(
            select(usage_records.c.status).where(usage_records.c.request_id == "cut")
        )
        assert found.scalar() == "upstream_interrupted"


def test_usage_statuses_are_the_strings_callers_pass() -> None:
    assert UsageStatus("client_disconnected") is UsageStatus.CLIENT_DISCONNECTED
    assert UsageStatus.OK == "ok" and f"{UsageStatus.TIMED_OUT}" == "timed_out"


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def _running_job(request_id: str) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": "video_1",
        "upstream_id": "up-1",
        "account_id": 1,
        "channel_id": 1,
        "model": "sora-2",
        "billing_mode": "pay_per_use_priority",
        "method": "per_second",
        "endpoint": "videos",
        "seconds": 4,
        "size": "720x1280",
        "request_id": request_id,
        "hold_nano": 400,
        "state": "in_progress",
        "upstream_object": {},
        "created_at": now,
        "updated_at": now,
    }


async def test_the_migration_keeps_running_video_jobs_holds_open(database_url: str) -> None:
    """Before 0007 the sweep looked each hold's video job up; after it, the
    holds of jobs already running say they outlive their request."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, "0006")
            for request_id in ("video-call", "chat-call"):
                await conn.execute(
                    text(
                        "INSERT INTO holds (request_id, account_id, token_id, amount_nano,"
                        " state, created_at) VALUES (:r, 1, NULL, 400, 'open', :now)"
                    ),
                    {"r": request_id, "now": datetime.now(UTC)},
                )
            await conn.execute(insert(video_jobs).values(_running_job("video-call")))
            await conn.run_sync(_upgrade, "head")
            rows = await conn.execute(
                select(holds.c.request_id, holds.c.outlives_request).order_by(holds.c.request_id)
            )
            assert [tuple(row) for row in rows] == [("chat-call", False), ("video-call", True)]
    finally:
        await engine.dispose()
