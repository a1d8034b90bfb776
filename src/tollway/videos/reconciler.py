"""The video reconciler: polls every open job now and then, closes the ones
that ended (or outlived ``MAX_AGE_S``), and finishes claimed jobs whose charge a
stopped process never recorded."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import nulls_first, select, update

from tollway.db.schema import video_jobs
from tollway.gateway import Gateway
from tollway.timeutil import utcnow
from tollway.videos.jobs import (
    TIMED_OUT,
    JobState,
    VideoJob,
)
from tollway.videos.lifecycle import (
    close_job,
    close_money,
    refresh,
)
from tollway.videos.store import (
    connection,
    job_from_row,
)

log = logging.getLogger(__name__)


# How often the reconciler polls the upstream for each open job.
POLL_EVERY_S = 5.0


# A job still unfinished this long after creation is given up on, its hold
# released (the stale-hold reconciler must leave video holds to this one).
MAX_AGE_S = 2 * 3600


POLL_BATCH = 200


POLL_CONCURRENCY = 8


# A job claimed this long ago without a recorded charge: its closer stopped.
UNRECORDED_AFTER_S = 30


async def reconcile_videos(
    gw: Gateway, every_s: float = POLL_EVERY_S, max_age_s: float = MAX_AGE_S
) -> None:
    """Run forever: close every job that has ended upstream, whether or not a
    client polls it. Safe to run on every replica at once."""
    while True:
        try:
            await reconcile_once(gw, every_s, max_age_s)
        except Exception:  # a database or upstream hiccup must not stop the loop
            log.exception("video reconciliation failed; will retry")
        await asyncio.sleep(every_s)


async def reconcile_once(
    gw: Gateway, every_s: float = POLL_EVERY_S, max_age_s: float = MAX_AGE_S
) -> None:
    """One round: poll the open jobs least recently polled (a replica leases
    each before polling it, so replicas share the work), give up on those
    older than ``max_age_s``, and finish closes whose closer stopped."""
    now = utcnow()
    c = video_jobs.c
    async with connection(gw) as conn:
        open_rows = (
            await conn.execute(
                select(video_jobs)
                .where(c.closed_at.is_(None))
                .order_by(nulls_first(c.polled_at.asc()), c.seq)
                .limit(POLL_BATCH)
            )
        ).all()
        unrecorded = (
            await conn.execute(
                select(video_jobs)
                .where(
                    c.closed_at < now - timedelta(seconds=UNRECORDED_AFTER_S),
                    c.cost_nano.is_(None),
                )
                .limit(POLL_BATCH)
            )
        ).all()
    for job in map(job_from_row, unrecorded):
        await close_money(gw, job)
    limit = asyncio.Semaphore(POLL_CONCURRENCY)

    async def one(job: VideoJob) -> None:
        async with limit:
            await _reconcile_job(gw, job, now, every_s, max_age_s)

    await asyncio.gather(*(one(job) for job in map(job_from_row, open_rows)))


async def _reconcile_job(
    gw: Gateway, job: VideoJob, now: datetime, every_s: float, max_age_s: float
) -> None:
    try:
        if now - job.created_at > timedelta(seconds=max_age_s):
            job = (await refresh(gw, job)).job  # a last look: it may have finished
            if job.open:
                await give_up(gw, job, max_age_s)
        elif await _lease(gw, job, now, every_s):
            await refresh(gw, job)
    except Exception:
        log.exception("reconciling video %s failed; will retry", job.id)


async def give_up(gw: Gateway, job: VideoJob, max_age_s: float) -> VideoJob:
    error = {
        "code": TIMED_OUT,
        "message": f"The video did not finish within {max_age_s:g} s; the gateway stopped "
        "waiting and released its hold.",
    }
    return await close_job(gw, job, JobState.EXPIRED, None, error)


async def _lease(gw: Gateway, job: VideoJob, now: datetime, every_s: float) -> bool:
    """Take the job's next poll, unless another replica polled it this round."""
    c = video_jobs.c
    recent = now - timedelta(seconds=every_s * 0.8)
    async with connection(gw) as conn:
        leased = await conn.execute(
            update(video_jobs)
            .where(
                c.id == job.id,
                c.closed_at.is_(None),
                (c.polled_at.is_(None)) | (c.polled_at < recent),
            )
            .values(polled_at=now)
        )
    return leased.rowcount == 1
