"""The video jobs table: each write one statement on an autocommit connection.

On SQLite that matters: the ledger commits on the event loop itself, and a
transaction left open across an ``await`` would make it wait on a lock that
the waiting loop can never release."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.db.schema import video_jobs
from tollway.gateway import Gateway
from tollway.timeutil import aware, utcnow
from tollway.types import BillingMethod
from tollway.videos.jobs import (
    JobState,
    VideoJob,
)


@contextlib.asynccontextmanager
async def connection(gw: Gateway) -> AsyncIterator[AsyncConnection]:
    async with gw.engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


async def insert_job(gw: Gateway, job: VideoJob) -> None:
    now = utcnow()
    values = {
        "id": job.id,
        "upstream_id": job.upstream_id,
        "account_id": job.account_id,
        "token_id": job.token_id,
        "channel_id": job.channel_id,
        "model": job.model,
        "billing_mode": job.billing_mode,
        "method": job.method.value,
        "endpoint": job.endpoint,
        "seconds": job.seconds,
        "size": job.size,
        "remixed_from": job.remixed_from,
        "request_id": job.request_id,
        "hold_nano": job.hold_nano,
        "group_name": job.group_name,
        "multiplier": job.multiplier,
        "state": job.state.value,
        "error": job.error,
        "upstream_object": job.upstream or {},
        "created_at": job.created_at,
        "updated_at": now,
        "polled_at": now,
    }
    async with connection(gw) as conn:
        await conn.execute(insert(video_jobs).values(values))


async def load_job(gw: Gateway, job_id: str, account_id: int | None = None) -> VideoJob | None:
    """A job by its gateway id; with ``account_id``, only that account's (and
    not deleted): another account's job is as good as absent."""
    c = video_jobs.c
    query = select(video_jobs).where(c.id == job_id)
    if account_id is not None:
        query = query.where(c.account_id == account_id, c.deleted_at.is_(None))
    async with connection(gw) as conn:
        row = (await conn.execute(query)).first()
    return job_from_row(row) if row is not None else None


async def list_jobs(
    gw: Gateway, account_id: int, after: str | None, limit: int, newest_first: bool
) -> tuple[list[VideoJob], bool] | None:
    """One page of an account's jobs and whether more follow; None when
    ``after`` names no job of the account."""
    c = video_jobs.c
    query = select(video_jobs).where(c.account_id == account_id, c.deleted_at.is_(None))
    async with connection(gw) as conn:
        if after is not None:
            seq = (
                await conn.execute(
                    select(c.seq).where(
                        c.id == after,
                        c.account_id == account_id,
                        c.deleted_at.is_(None),
                    )
                )
            ).scalar()
            if seq is None:
                return None
            query = query.where(c.seq < seq if newest_first else c.seq > seq)
        query = query.order_by(c.seq.desc() if newest_first else c.seq.asc()).limit(limit + 1)
        rows = (await conn.execute(query)).all()
    return [job_from_row(r) for r in rows[:limit]], len(rows) > limit


async def mark_deleted(gw: Gateway, job: VideoJob) -> None:
    async with connection(gw) as conn:
        await conn.execute(
            update(video_jobs).where(video_jobs.c.id == job.id).values(deleted_at=utcnow())
        )


def job_from_row(row: Row[Any]) -> VideoJob:
    r = row._mapping
    return VideoJob(
        id=r["id"],
        upstream_id=r["upstream_id"],
        account_id=r["account_id"],
        token_id=r["token_id"],
        channel_id=r["channel_id"],
        model=r["model"],
        billing_mode=r["billing_mode"],
        method=BillingMethod(r["method"]),
        endpoint=r["endpoint"],
        seconds=r["seconds"],
        size=r["size"],
        request_id=r["request_id"],
        hold_nano=r["hold_nano"],
        created_at=aware(r["created_at"]) or utcnow(),
        state=JobState(r["state"]),
        upstream=r["upstream_object"],
        error=r["error"],
        remixed_from=r["remixed_from"],
        closed_at=aware(r["closed_at"]),
        cost_nano=r["cost_nano"],
        group_name=r["group_name"],
        multiplier=r["multiplier"],
    )
