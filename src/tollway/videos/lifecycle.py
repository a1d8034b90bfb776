"""Applying what the upstream says to a job, and closing its money once.

Two paths see a job end, and both go through ``apply_upstream``: a client's
GET (its polls drive the job while it watches) and the background reconciler
(so a job is closed even if nobody polls it again). The first to see a final
state claims it with a conditional UPDATE (``... WHERE closed_at IS NULL``)
and only that one closes the hold; the ledger's close is itself idempotent per
request id, so a retry can never charge twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import update

from tollway.billing.pricing import PricingError, bill
from tollway.billing.videos import video_usage
from tollway.db.schema import video_jobs
from tollway.gateway import Gateway
from tollway.ledger import LedgerError, Settlement, UsageRecord, UsageStatus
from tollway.routing.costs import upstream_cost
from tollway.state import multiplier_of
from tollway.timeutil import utcnow
from tollway.types import Usage, nano_to_usd, parse_count
from tollway.upstream import UpstreamError
from tollway.videos.jobs import (
    FINAL,
    RECORD_STATUS,
    TIMED_OUT,
    JobState,
    VideoJob,
    upstream_state,
)
from tollway.videos.store import (
    connection,
    load_job,
)
from tollway.videos.upstream import (
    job_channel,
    parse_object,
    read_answer,
    send,
    upstream_path,
)

log = logging.getLogger(__name__)


POLL_TIMEOUT_S = 30


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
        cost = bill(model, job.method, usage, multiplier_of(job.multiplier or "1"))
        cost_nano = cost.total_nano
        prices = {line.name: nano_to_usd(line.unit_price_nano) for line in cost.lines}
    except PricingError as exc:
        cost_nano, prices = job.hold_nano, {}
        detail += f"; charged its hold ({exc})"
    if cost_nano > job.hold_nano:
        cost_nano = job.hold_nano
        detail += "; capped at its hold (the price when it was asked for)"
    record = usage_record(job, usage, cost_nano, prices, UsageStatus.OK, detail)
    channel = gw.state.all_channels.get(job.channel_id)
    if channel is not None and model is not None:
        record.upstream_cost_nano = upstream_cost(channel, model, job.method, usage)
    return record


def release_record(job: VideoJob) -> UsageRecord:
    error = job.error or {}
    why = ": ".join(str(error[k]) for k in ("code", "message") if error.get(k))
    detail = f"video {job.id} {job.state.value}" + (f": {why}" if why else "")
    status = RECORD_STATUS.get(job.state, UsageStatus.UPSTREAM_ERROR)
    if error.get("code") == TIMED_OUT:
        status = UsageStatus.TIMED_OUT
    return usage_record(job, Usage(items=0), 0, {}, status, detail[:1000])


def usage_record(
    job: VideoJob,
    usage: Usage,
    cost_nano: int,
    prices: dict[str, str],
    status: UsageStatus,
    detail: str,
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
        group_name=job.group_name,
        multiplier=job.multiplier,
    )


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
        gone = {
            "code": "video_not_found",
            "message": "The upstream no longer has this video.",
        }
        return Refreshed(await close_job(gw, job, JobState.EXPIRED, None, gone))
    if resp.status != 200 or obj is None:
        log.warning("polling video %s: upstream answered HTTP %d", job.id, resp.status)
        return Refreshed(job)
    return Refreshed(await apply_upstream(gw, job, obj), resp.header("openai-poll-after-ms"))
