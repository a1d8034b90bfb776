"""A video job: the gateway's record of one upstream job, and the states it
goes through (each upstream's words for them mapped to the gateway's)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tollway.ledger import UsageStatus
from tollway.types import BillingMethod

ID_PREFIX = "video_"


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
    JobState.COMPLETED: UsageStatus.OK,
    JobState.FAILED: UsageStatus.VIDEO_FAILED,
    JobState.CANCELLED: UsageStatus.CANCELLED,
    JobState.EXPIRED: UsageStatus.VIDEO_EXPIRED,
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
    group_name: str | None = None  # the price group it was asked in, and its
    multiplier: str | None = None  # multiplier then (None: default, x1)

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
