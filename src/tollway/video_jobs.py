"""Video generation jobs: the gateway's record of each upstream job, the one
function that applies a new upstream state to it, and the reconciler.

A video is held for at creation (its price for the seconds asked) and its
hold is closed when the job ends: settled when it completes, released in full
when it fails, is cancelled, expires upstream, or outlives ``MAX_AGE_S``.
Two paths see a job end, and both go through ``apply_upstream``: a client's
GET (its polls drive the job while it watches) and the background
reconciler (so a job is closed even if nobody polls it again).

Exactly once, however many pollers and replicas: the first to see a final
state claims it with a conditional UPDATE (``... WHERE closed_at IS NULL``)
and only that one closes the hold. The ledger's close is itself idempotent
per request id, so a retry can never charge twice: a claimed job whose
charge was not recorded (the process stopped in between) is closed again by
the reconciler, and the ledger answers ``already_settled`` if it had been.

Every write here is one statement on an autocommit connection. On SQLite
that matters: the ledger commits on the event loop itself, and a
transaction left open across an ``await`` would make it wait on a lock that
the waiting loop can never release.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import orjson
from sqlalchemy import Row, insert, nulls_first, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.billing.pricing import PricingError, bill
from tollway.billing.videos import video_usage
from tollway.db.schema import video_jobs
from tollway.gateway import Gateway
from tollway.ledger import LedgerError, Settlement, UsageRecord
from tollway.providers import PROVIDERS, Outbound
from tollway.state import Channel
from tollway.timeutil import aware, utcnow
from tollway.transport import UpstreamAnswer
from tollway.types import BillingMethod, Usage, nano_to_usd, parse_count
from tollway.upstream import UpstreamError

log = logging.getLogger(__name__)

ID_PREFIX = "video_"
# How often the reconciler polls the upstream for each open job.
POLL_EVERY_S = 5.0
# A job still unfinished this long after creation is given up on, its hold
# released (the stale-hold reconciler must leave video holds to this one).
MAX_AGE_S = 2 * 3600
POLL_BATCH = 200
POLL_CONCURRENCY = 8
POLL_TIMEOUT_S = 30
# A job claimed this long ago without a recorded charge: its closer stopped.
UNRECORDED_AFTER_S = 30
# The error code of a job the gateway gave up on.
TIMED_OUT = "video_timed_out"


class JobState(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


FINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED})

# The usage record's status for each way a job ends.
RECORD_STATUS = {
    JobState.COMPLETED: "ok",
    JobState.FAILED: "video_failed",
    JobState.CANCELLED: "cancelled",
    JobState.EXPIRED: "video_expired",
}

# What upstreams say, by the state it means.
_UPSTREAM_STATES = {
    "queued": JobState.QUEUED,
    "pending": JobState.QUEUED,
    "in_progress": JobState.IN_PROGRESS,
    "processing": JobState.IN_PROGRESS,
    "completed": JobState.COMPLETED,
    "succeeded": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
    "canceled": JobState.CANCELLED,
    "expired": JobState.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class VideoJob:
    id: str
    upstream_id: str
    account_id: int
    token_id: int | None
    channel_id: int
    model: str
    billing_mode: str
    method: BillingMethod
    endpoint: str
    seconds: int
    size: str
    request_id: str
    hold_nano: int
    created_at: datetime
    state: JobState = JobState.QUEUED
    upstream: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    remixed_from: str | None = None
    closed_at: datetime | None = None
    cost_nano: int | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None


def new_video_id() -> str:
    return ID_PREFIX + secrets.token_hex(16)


def upstream_state(obj: dict[str, Any]) -> JobState | None:
    """The state an upstream video object reports; None when it says nothing
    we know. OpenAI reports an expired video as ``failed`` with the error code
    ``video_expired``."""
    status = obj.get("status")
    state = _UPSTREAM_STATES.get(status) if isinstance(status, str) else None
    error = obj.get("error")
    expired = isinstance(error, dict) and error.get("code") == "video_expired"
    if state is JobState.FAILED and expired:
        return JobState.EXPIRED
    return state


# --- the store ----------------------------------------------------------------


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
                        c.id == after, c.account_id == account_id, c.deleted_at.is_(None)
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
    )


# --- applying what the upstream says ------------------------------------------


async def apply_upstream(gw: Gateway, job: VideoJob, obj: dict[str, Any]) -> VideoJob:
    """Record the upstream's latest object for a job; if it is final, close the
    job (once, whoever else is polling). A closed job no longer changes."""
    if not job.open:
        return job
    state = upstream_state(obj) or job.state
    error = obj.get("error") if isinstance(obj.get("error"), dict) else None
    if state in FINAL:
        return await close_job(gw, job, state, obj, error)
    if obj == job.upstream and state is job.state:
        return job
    c = video_jobs.c
    async with connection(gw) as conn:
        await conn.execute(
            update(video_jobs)
            .where(c.id == job.id, c.closed_at.is_(None))
            .values(state=state.value, upstream_object=obj, updated_at=utcnow())
        )
    return replace(job, state=state, upstream=obj)


async def close_job(
    gw: Gateway,
    job: VideoJob,
    state: JobState,
    obj: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> VideoJob:
    """Claim the job's final state; the claimer closes its hold. Returns the job
    as it now stands (closed by this caller or by another)."""
    now = utcnow()
    c = video_jobs.c
    values: dict[str, Any] = {
        "state": state.value,
        "error": error,
        "updated_at": now,
        "closed_at": now,
    }
    if obj is not None:
        values["upstream_object"] = obj
    async with connection(gw) as conn:
        claimed = await conn.execute(
            update(video_jobs).where(c.id == job.id, c.closed_at.is_(None)).values(values)
        )
    if claimed.rowcount != 1:
        log.debug("video %s was closed by another poller", job.id)
        return await finish(gw, await load_job(gw, job.id) or job)
    upstream = obj if obj is not None else job.upstream
    closed = replace(job, state=state, error=error, closed_at=now, upstream=upstream)
    return await close_money(gw, closed)


async def finish(gw: Gateway, job: VideoJob) -> VideoJob:
    """A closed job with its charge recorded: if its closer has not recorded it
    yet, close the hold here too (the ledger closes it once either way), so a
    client never sees a finished job without its cost."""
    if job.open or job.cost_nano is not None:
        return job
    return await close_money(gw, job)


async def close_money(gw: Gateway, job: VideoJob) -> VideoJob:
    """Settle (completed) or release (anything else) the job's hold and record
    the charge. Safe to repeat: the ledger closes a hold once."""
    try:
        if job.state is JobState.COMPLETED:
            settlement = await gw.ledger.settle(settlement_record(gw, job))
        else:
            settlement = await gw.ledger.release(release_record(job))
    except LedgerError:
        log.exception("closing the hold of video %s failed; the reconciler will retry", job.id)
        return job
    return await _record_cost(gw, job, settlement)


async def _record_cost(gw: Gateway, job: VideoJob, settlement: Settlement) -> VideoJob:
    c = video_jobs.c
    async with connection(gw) as conn:
        await conn.execute(
            update(video_jobs)
            .where(c.id == job.id, c.cost_nano.is_(None))
            .values(cost_nano=settlement.cost_nano)
        )
    return replace(job, cost_nano=settlement.cost_nano)


def billed_seconds(job: VideoJob) -> int:
    """The seconds the upstream says it made, never more than were asked for
    (and held); the seconds asked when it does not say."""
    reported = (job.upstream or {}).get("seconds")
    if isinstance(reported, int) and not isinstance(reported, bool):
        reported = str(reported)
    seconds = parse_count(reported) if isinstance(reported, str) else None
    if seconds:
        return min(seconds, job.seconds)
    return job.seconds


def settlement_record(gw: Gateway, job: VideoJob) -> UsageRecord:
    """A completed job's charge: its price at settlement for the seconds made,
    never more than its hold (the price when the video was asked for)."""
    seconds = billed_seconds(job)
    usage = video_usage(seconds, job.size)
    detail = f"video {job.id}: {seconds} s at {job.size}"
    if seconds != job.seconds:
        detail += f" ({job.seconds} s asked)"
    model = gw.state.catalog.get(job.model)
    try:
        if model is None:
            raise PricingError(f"model '{job.model}' is no longer in the catalog")
        cost = bill(model, job.method, usage)
        cost_nano = cost.total_nano
        prices = {line.name: nano_to_usd(line.unit_price_nano) for line in cost.lines}
    except PricingError as exc:
        cost_nano, prices = job.hold_nano, {}
        detail += f"; charged its hold ({exc})"
    if cost_nano > job.hold_nano:
        cost_nano = job.hold_nano
        detail += "; capped at its hold (the price when it was asked for)"
    return usage_record(job, usage, cost_nano, prices, "ok", detail)


def release_record(job: VideoJob) -> UsageRecord:
    error = job.error or {}
    why = ": ".join(str(error[k]) for k in ("code", "message") if error.get(k))
    detail = f"video {job.id} {job.state.value}" + (f": {why}" if why else "")
    status = RECORD_STATUS.get(job.state, "upstream_error")
    if error.get("code") == TIMED_OUT:
        status = "timed_out"
    return usage_record(job, Usage(items=0), 0, {}, status, detail[:1000])


def usage_record(
    job: VideoJob, usage: Usage, cost_nano: int, prices: dict[str, str], status: str, detail: str
) -> UsageRecord:
    elapsed = utcnow() - job.created_at
    return UsageRecord(
        request_id=job.request_id,
        account_id=job.account_id,
        token_id=job.token_id,
        model=job.model,
        endpoint=job.endpoint,
        billing_mode=job.billing_mode,
        method=job.method.value,
        usage=usage,
        unit_prices=prices,
        cost_nano=cost_nano,
        status=status,
        channel_id=job.channel_id,
        duration_ms=max(0, int(elapsed.total_seconds() * 1000)),
        detail=detail,
    )


# --- talking to the upstream --------------------------------------------------


def job_channel(gw: Gateway, channel_id: int) -> Channel | None:
    """The channel a job lives on (an upstream job exists on that one only)."""
    for channel in gw.state.channels:
        if channel.id == channel_id and channel.type in PROVIDERS:
            return channel
    return None


def send(
    gw: Gateway,
    channel: Channel,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str | None = None,
    timeout_s: float | None = None,
) -> Awaitable[UpstreamAnswer]:
    """One request to the channel's upstream, through its provider; the
    answer is open (close it)."""
    outbound = Outbound("videos", body, method=method, path=path, content_type=content_type)
    request = PROVIDERS[channel.type].request(channel.base_url, channel.api_key, outbound)
    timeout = gw.settings.upstream_timeout_s if timeout_s is None else timeout_s
    return gw.upstream.send(request, timeout)


async def read_answer(resp: UpstreamAnswer) -> bytes:
    try:
        return await resp.read()
    finally:
        resp.close()


def upstream_path(job: VideoJob, suffix: str = "") -> str:
    return f"videos/{quote(job.upstream_id, safe='')}{suffix}"


def parse_object(data: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


@dataclass(frozen=True, slots=True)
class Refreshed:
    job: VideoJob
    poll_after_ms: str | None = None


async def refresh(gw: Gateway, job: VideoJob) -> Refreshed:
    """Ask the upstream how an open job is doing and apply the answer. An
    upstream that cannot be asked right now leaves the job as it was."""
    if not job.open:
        return Refreshed(await finish(gw, job))
    channel = job_channel(gw, job.channel_id)
    if channel is None:
        return Refreshed(job)
    try:
        resp = await send(gw, channel, "GET", upstream_path(job), timeout_s=POLL_TIMEOUT_S)
        data = await read_answer(resp)
    except (UpstreamError, OSError) as exc:
        log.warning("polling video %s upstream failed: %r", job.id, exc)
        return Refreshed(job)
    obj = parse_object(data)
    if resp.status == 404 and obj is not None and isinstance(obj.get("error"), dict):
        gone = {"code": "video_not_found", "message": "The upstream no longer has this video."}
        return Refreshed(await close_job(gw, job, JobState.EXPIRED, None, gone))
    if resp.status != 200 or obj is None:
        log.warning("polling video %s: upstream answered HTTP %d", job.id, resp.status)
        return Refreshed(job)
    return Refreshed(await apply_upstream(gw, job, obj), resp.header("openai-poll-after-ms"))


# --- the reconciler -----------------------------------------------------------


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
