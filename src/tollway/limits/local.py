"""Rate limits counted in this process: exact for one process; with several
workers or replicas each counts its own calls (set TOLLWAY_REDIS_URL to
share them)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tollway.limits.rules import WINDOW_S, Admission, Headroom, Subject, Ticket


@dataclass(slots=True)
class Window:
    """One subject's last minute in one-second buckets, and its calls in flight."""

    buckets: deque[list[int]] = field(default_factory=deque)  # [second, requests, tokens]
    requests: int = 0
    tokens: int = 0
    in_flight: int = 0

    def prune(self, second: int) -> None:
        oldest = second - WINDOW_S + 1
        buckets = self.buckets
        while buckets and buckets[0][0] < oldest:
            _, requests, tokens = buckets.popleft()
            self.requests -= requests
            self.tokens -= tokens

    def add(self, second: int, tokens: int) -> None:
        buckets = self.buckets
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += 1
            buckets[-1][2] += tokens
        else:
            buckets.append([second, 1, tokens])
        self.requests += 1
        self.tokens += tokens

    def wait_s(self, now: float, index: int, needed: int, total: int, limit: int) -> float:
        """Seconds until ``needed`` more fit under ``limit`` as old buckets
        leave (index 1: requests, 2: tokens)."""
        dropped = 0
        for bucket in self.buckets:
            dropped += bucket[index]
            if total - dropped + needed <= limit:
                return max(bucket[0] + WINDOW_S - now, 0.0)
        return float(WINDOW_S)

    def reset_s(self, now: float) -> float:
        """Seconds until the oldest counted second leaves the window."""
        return max(self.buckets[0][0] + WINDOW_S - now, 0.0) if self.buckets else 0.0


class LocalLimiter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._windows: dict[str, Window] = {}

    async def admit(self, request_id: str, subjects: Sequence[Subject], tokens: int) -> Admission:
        now = self.clock()
        second = int(now)
        windows = []
        for subject in subjects:
            window = self._windows.get(subject.key)
            if window is None:
                window = self._windows[subject.key] = Window()
            window.prune(second)
            windows.append(window)
        admission = judge(subjects, windows, tokens, now)
        if admission.ticket is not None:
            for window in windows:
                window.add(second, tokens)
                window.in_flight += 1
            admission.ticket = Ticket(request_id, tuple(subjects), tokens, second)
        return admission

    async def finish(self, ticket: Ticket, used_tokens: int) -> None:
        self.end(ticket, used_tokens)

    def end(self, ticket: Ticket, used_tokens: int) -> None:
        """Ended in memory: nothing to wait for."""
        oldest = int(self.clock()) - WINDOW_S + 1
        for subject in ticket.subjects:
            window = self._windows.get(subject.key)
            if window is None:
                continue
            window.in_flight = max(window.in_flight - 1, 0)
            if ticket.second >= oldest:
                for bucket in window.buckets:
                    if bucket[0] == ticket.second:
                        bucket[2] += used_tokens - ticket.tokens
                        window.tokens += used_tokens - ticket.tokens
                        break
            if not window.buckets and not window.in_flight:
                del self._windows[subject.key]

    async def close(self) -> None:
        return None


def judge(
    subjects: Sequence[Subject], windows: Sequence[Window], tokens: int, now: float
) -> Admission:
    """Whether a call of ``tokens`` fits every subject's limits, and the
    tightest headroom of each kind (after it, when it fits)."""
    requests_room: Headroom | None = None
    tokens_room: Headroom | None = None
    refused = Admission(None)
    for subject, window in zip(subjects, windows, strict=True):
        limits, whose = subject.limits, subject.kind
        if limits.rpm is not None:
            room = Headroom(limits.rpm, limits.rpm - window.requests - 1, window.reset_s(now))
            if room.remaining < 0:
                wait = window.wait_s(now, 1, 1, window.requests, limits.rpm)
                _refuse(refused, "requests", whose, wait)
            if requests_room is None or room.remaining < requests_room.remaining:
                requests_room = room
        if limits.tpm is not None:
            room = Headroom(limits.tpm, limits.tpm - window.tokens - tokens, window.reset_s(now))
            if tokens > limits.tpm:
                _refuse(refused, "tokens", whose, WINDOW_S)
                refused.too_large = True
            elif room.remaining < 0:
                wait = window.wait_s(now, 2, tokens, window.tokens, limits.tpm)
                _refuse(refused, "tokens", whose, wait)
            if tokens_room is None or room.remaining < tokens_room.remaining:
                tokens_room = room
        if limits.concurrent is not None and window.in_flight >= limits.concurrent:
            _refuse(refused, "concurrent", whose, 1.0)
    refused.requests, refused.tokens = requests_room, tokens_room
    if refused.refused_by:
        return refused
    refused.ticket = Ticket("", (), tokens, int(now))  # filled in by the caller
    return refused


def _refuse(admission: Admission, by: str, whose: str, wait: float) -> None:
    if wait >= admission.retry_after_s:  # the limit that frees last says when to retry
        admission.refused_by, admission.subject, admission.retry_after_s = by, whose, wait
