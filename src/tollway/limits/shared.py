"""Rate limits shared by every process and replica through Redis: one script
call before a call (count and check every limit of the token and its
account at once), one after it, off the answer's path, when it counted
tokens or calls at once; sent on one pipelined connection (limits/resp.py).

Redis keeps, per subject, a hash of one-second buckets (``r<second>`` and
``t<second>`` fields: requests and tokens) with the window's running sums
(``sr``, ``st``) and its oldest second (``tail``), so a call reads three
fields and moves the tail past the seconds that left, instead of reading the
whole minute; and a sorted set of the calls in flight (scored by their start,
so a replica that died stops counting after STALE_CALL_S). Time is Redis's
own clock, the same for every replica.

Redis unreachable: calls pass (``open``, the default) or get a 503
(``closed``), as TOLLWAY_LIMITS_ON_REDIS_DOWN says; logged once a second at
most, and counted (``unavailable``). After a failure Redis is left alone for
a second, so an outage does not slow every call by a connect timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from tollway.errors import ApiError
from tollway.limits.leases import UNLIMITED, Lease, admit_locally
from tollway.limits.resp import ReplyError, RespClient, Script
from tollway.limits.rules import (
    Admission,
    Headroom,
    Subject,
    Ticket,
    limits_unavailable,
)
from tollway.limits.scripts import ADMIT, ADMIT_FIELDS, FINISH, LEASE_FIELDS, script_text

log = logging.getLogger(__name__)

SLOT = "{l}"  # one hash slot: a call's keys go to one script
DOWN_S = 1.0
MAX_UNFINISHED = 10_000
MAX_BATCH = 200  # calls a script call carries at most
NONE = -1
REFUSALS = {1: "requests", 2: "tokens", 3: "concurrent"}


@dataclass(slots=True)
class _Asked:
    """An admit waiting for its batch's answer."""

    request_id: str
    subjects: Sequence[Subject]
    tokens: int
    answer: asyncio.Future[Admission]


@dataclass(frozen=True, slots=True)
class _End:
    """What Redis is told when a call or a lease ends (ENDS)."""

    subjects: tuple[Subject, ...]
    members: tuple[str, ...]  # per subject, the in-flight member to remove ('': none)
    second: int
    requests: int = 0  # to add in that second (negative: given back)
    tokens: int = 0


class SharedLimiter:
    """Admits and ends are batched: those asked for while a script call is on
    its way go together in the next one (one ``EVALSHA`` for the batch,
    decided call by call in order, as if each had been its own). A subject far
    from its limits gets a lease with its admit, and its next calls within
    that second are admitted here, without Redis (limits/leases.py)."""

    def __init__(
        self, url: str, fail_open: bool = True, prefix: str = "tollway", leases: bool = True
    ) -> None:
        self.client = RespClient(url, connect_timeout_s=0.25, timeout_s=0.5)
        self.leases = leases  # False: every call goes to Redis
        self.fail_open = fail_open
        self.unavailable = 0  # calls decided without Redis
        self.script_calls = 0  # admit and end batches sent
        self._admit = Script(script_text(ADMIT))
        self._finish = Script(script_text(FINISH))
        self._down_until = 0.0
        self._logged_at = 0.0
        self._asked: list[_Asked] = []
        self._admitting: asyncio.Future[None] | None = None
        # Ends Redis has not taken yet (the oldest dropped past MAX_UNFINISHED).
        self._unfinished: deque[_End] = deque(maxlen=MAX_UNFINISHED)
        self._finishing: asyncio.Future[None] | None = None
        self._leases: dict[str, Lease] = {}  # by subject key
        self._lease_ids = itertools.count(1)
        self._process = secrets.token_hex(4)
        self.now_ms = 0  # tests set a clock; 0: Redis's own
        self.prefix = f"{prefix}:limits:{SLOT}:"

    async def admit(self, request_id: str, subjects: Sequence[Subject], tokens: int) -> Admission:
        leases = self._leases_covering(subjects, tokens)
        if leases is not None:
            return admit_locally(request_id, subjects, leases, tokens)
        if time.monotonic() < self._down_until:
            return self._without_redis(None)
        answer: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._asked.append(_Asked(request_id, subjects, tokens, answer))
        if self._admitting is None:
            self._admitting = asyncio.ensure_future(self._send_admits())
        return await answer

    async def finish(self, ticket: Ticket, used_tokens: int) -> None:
        """End the call's slot and settle its tokens: in its leases while they
        are open, else in Redis. While Redis is down, kept (up to
        MAX_UNFINISHED) and sent once it answers again, so a blip does not
        leave slots taken until they go stale."""
        sending = self.end(ticket, used_tokens)
        if sending is not None:
            await asyncio.shield(sending)  # it runs until every end is sent

    def end(self, ticket: Ticket, used_tokens: int) -> asyncio.Future[None] | None:
        """``finish`` without waiting: the batch sending what Redis must hear
        (None: nothing, the call ended in its leases, or Redis is down)."""
        sending = None
        for end in self._ends_of(ticket, used_tokens):
            sending = self._queue_end(end)
        return sending

    async def close(self) -> None:
        for lease in list(self._leases.values()):
            self._close_lease(lease)  # what they hold goes back to Redis
        if self._finishing is not None:
            await self._finishing
        await self.client.close()

    # -- leases

    def _leases_covering(self, subjects: Sequence[Subject], tokens: int) -> list[Lease] | None:
        """The subjects' open leases, when each covers the call."""
        found = []
        now = asyncio.get_running_loop().time()
        for subject in subjects:
            lease = self._leases.get(subject.key)
            if lease is None or not self._current(lease, now) or not lease.covers(tokens):
                return None
            found.append(lease)
        return found

    def _current(self, lease: Lease, now: float) -> bool:
        """Whether the lease's second still runs at loop time ``now`` (closing it when not)."""
        # (a test's clock, when set, else the loop's)
        current = self.now_ms // 1000 == lease.second if self.now_ms else now < lease.expires
        if not current:
            self._close_lease(lease)
        return current

    def _close_lease(self, lease: Lease) -> None:
        """Its second is over: what it did not use goes back to Redis."""
        if not lease.open:
            return
        lease.open = False
        if self._leases.get(lease.subject.key) is lease:
            del self._leases[lease.subject.key]
        for slot in lease.slots or ():
            self._queue_end(_End((lease.subject,), (slot,), lease.second))
        if lease.requests > 0 or lease.tokens > 0:
            unused = _End(
                (lease.subject,), ("",), lease.second,
                -max(lease.requests, 0), -max(lease.tokens, 0),
            )  # fmt: skip
            self._queue_end(unused)

    def _lease_name(self) -> str:
        """A new lease's name (its slots' members are ``<name>#<k>``); '' asks none."""
        return f"lease:{self._process}:{next(self._lease_ids)}" if self.leases else ""

    def _take_leases(
        self, found: list[int], names: list[str], subjects: list[Subject], now_ms: int
    ) -> None:
        loop = asyncio.get_running_loop()
        expires = loop.time() + (1000 - now_ms % 1000) / 1000
        for j, (subject, name) in enumerate(zip(subjects, names, strict=True)):
            requests, tokens, slots, requests_left, tokens_left = (
                int(v) for v in found[j * LEASE_FIELDS : (j + 1) * LEASE_FIELDS]
            )
            if (requests, tokens, slots) == (0, 0, 0):
                continue
            old = self._leases.get(subject.key)
            if old is not None:
                self._close_lease(old)
            lease = Lease(
                subject, now_ms // 1000, expires, requests, tokens,
                None if slots == UNLIMITED else [f"{name}#{k}" for k in range(1, slots + 1)],
                requests_left, tokens_left, (1000 - now_ms % 1000) / 1000,
            )  # fmt: skip
            self._leases[subject.key] = lease
            if not self.now_ms:
                loop.call_at(expires, self._close_lease, lease)

    # -- admits

    async def _send_admits(self) -> None:
        try:
            while self._asked:
                batch = self._still_asking(self._asked[:MAX_BATCH])
                self._asked = self._asked[MAX_BATCH:]
                if not batch:
                    continue
                try:
                    await self._admit_batch(batch)
                except BaseException as exc:  # a bug: its calls fail, none waits forever
                    for asked in batch:
                        if not asked.answer.done():
                            asked.answer.set_exception(exc)
                    raise
        finally:
            self._admitting = None

    def _still_asking(self, asked: list[_Asked]) -> list[_Asked]:
        """Those of ``asked`` Redis must decide: the calls that queued while
        the script granting their subjects a lease was on its way are admitted
        from it here (else each batch would close the lease the one before
        took, and every call queued behind it would go to Redis in turn)."""
        left = []
        for call in asked:
            if call.answer.cancelled():
                continue  # the caller left before anything was counted
            leases = self._leases_covering(call.subjects, call.tokens)
            if leases is None:
                left.append(call)
            else:
                call.answer.set_result(
                    admit_locally(call.request_id, call.subjects, leases, call.tokens)
                )
        return left

    async def _admit_batch(self, batch: list[_Asked]) -> None:
        for asked in batch:  # what their leases hold goes back first, in this script
            for subject in asked.subjects:
                lease = self._leases.get(subject.key)
                if lease is not None:
                    self._close_lease(lease)
        ends = self._take_ends()
        calls = [asked.subjects for asked in batch]
        keys, subjects, indexes = self._subjects_of([*calls, *(end.subjects for end in ends)])
        names = [self._lease_name() for _ in subjects]
        args: list[str | int] = [self.now_ms, len(subjects)]
        for subject, name in zip(subjects, names, strict=True):
            rule = subject.limits
            args += [_arg(rule.rpm), _arg(rule.tpm), _arg(rule.concurrent), name]
        end_args = _end_args(ends, indexes[len(batch) :])
        args += [len(end_args), *end_args]
        for asked, mine in zip(batch, indexes[: len(batch)], strict=True):
            args += [asked.request_id, asked.tokens, len(mine), *mine]
        try:
            self.script_calls += 1
            found = await self.client.run(self._admit, keys, args)
        except (OSError, ReplyError) as exc:  # unreachable, timed out, or LOADING after a restart
            self._unfinished.extendleft(reversed(ends))
            self._down(exc)
            for asked in batch:
                self._answer_without_redis(asked.answer)
            return
        now_ms = int(found[0])
        rows = found[1 : 1 + len(batch) * ADMIT_FIELDS]
        self._take_leases(found[1 + len(rows) :], names, subjects, now_ms)
        for i, asked in enumerate(batch):
            row = rows[i * ADMIT_FIELDS : (i + 1) * ADMIT_FIELDS]
            admission = _admission(row, asked.request_id, asked.subjects, asked.tokens)
            if not asked.answer.cancelled():
                asked.answer.set_result(admission)
            elif admission.ticket is not None:  # the caller left: its slot goes back
                self._queue_end(_ended_in_redis(admission.ticket, admission.ticket.tokens))

    # -- ends

    def _ends_of(self, ticket: Ticket, used_tokens: int) -> list[_End]:
        """What Redis must hear of a call that ended (nothing, when its leases
        are still open: its slot and unused tokens go back to them)."""
        if ticket.leases is None:
            return [_ended_in_redis(ticket, used_tokens)]
        ends = []
        for subject, lease, slot in zip(ticket.subjects, ticket.leases, ticket.slots, strict=True):
            extra = used_tokens - ticket.tokens
            if lease.open:
                lease.give_back(slot, -extra)
                if extra > 0:  # used more than it held: counted in Redis
                    ends.append(_End((subject,), ("",), lease.second, 0, extra))
            else:
                ends.append(_End((subject,), (slot,), lease.second, 0, extra))
        return ends

    def _queue_end(self, end: _End) -> asyncio.Future[None] | None:
        """Queue an end; the batch sending it (None while Redis is down)."""
        self._unfinished.append(end)
        if time.monotonic() < self._down_until:
            return None
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._send_finishes())
        return self._finishing

    def _take_ends(self) -> list[_End]:
        count = min(len(self._unfinished), MAX_BATCH)
        return [self._unfinished.popleft() for _ in range(count)]

    async def _send_finishes(self) -> None:
        try:
            while self._unfinished:
                batch = self._take_ends()
                try:
                    await self._send_ends(batch)
                except (OSError, ReplyError) as exc:
                    self._unfinished.extendleft(reversed(batch))
                    self._down(exc)
                    return
        finally:
            self._finishing = None

    async def _send_ends(self, ends: list[_End]) -> None:
        keys, _, indexes = self._subjects_of([end.subjects for end in ends])
        self.script_calls += 1
        await self.client.run(self._finish, keys, _end_args(ends, indexes))

    def _subjects_of(
        self, calls: list[Sequence[Subject]]
    ) -> tuple[list[str], list[Subject], list[list[int]]]:
        """The batch's subjects once each (their keys, and them), and each
        call's subjects as indexes (1-based) into them."""
        index: dict[str, int] = {}
        keys: list[str] = []
        subjects: list[Subject] = []
        indexes = []
        for called in calls:
            mine = []
            for subject in called:
                j = index.get(subject.key)
                if j is None:
                    j = index[subject.key] = len(index) + 1
                    named = self.prefix + subject.key
                    keys += [f"{named}:buckets", f"{named}:running"]
                    subjects.append(subject)
                mine.append(j)
            indexes.append(mine)
        return keys, subjects, indexes

    # -- Redis down

    def _without_redis(self, exc: BaseException | None) -> Admission:
        if exc is not None:
            self._down(exc)
        self.unavailable += 1
        if self.fail_open:
            return Admission(None)  # passes, counted nowhere
        raise limits_unavailable()

    def _answer_without_redis(self, answer: asyncio.Future[Admission]) -> None:
        if answer.cancelled():
            return
        try:
            answer.set_result(self._without_redis(None))
        except ApiError as refused:
            answer.set_exception(refused)

    def _down(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._down_until = now + DOWN_S
        if now - self._logged_at >= 1.0:
            self._logged_at = now
            log.warning(
                "rate limits: Redis unreachable (%r); calls %s", exc,
                "pass unchecked" if self.fail_open else "get 503",
            )  # fmt: skip


def _ended_in_redis(ticket: Ticket, used_tokens: int) -> _End:
    members = (ticket.request_id,) * len(ticket.subjects)
    return _End(ticket.subjects, members, ticket.second, 0, used_tokens - ticket.tokens)


def _end_args(ends: list[_End], indexes: list[list[int]]) -> list[str | int]:
    args: list[str | int] = []
    for end, mine in zip(ends, indexes, strict=True):
        args += [end.second, end.requests, end.tokens, len(mine)]
        for j, member in zip(mine, end.members, strict=True):
            args += [j, member]
    return args


def _arg(value: int | None) -> int:
    return NONE if value is None else value


def _admission(
    found: list[int], request_id: str, subjects: Sequence[Subject], tokens: int
) -> Admission:
    ok, by, whose, wait_ms, too_large = (int(v) for v in found[:5])
    rq_limit, rq_left, rq_reset, tk_limit, tk_left, tk_reset, second = (int(v) for v in found[5:])
    admission = Admission(None)
    if rq_limit != NONE:
        admission.requests = Headroom(rq_limit, rq_left, rq_reset / 1000)
    if tk_limit != NONE:
        admission.tokens = Headroom(tk_limit, tk_left, tk_reset / 1000)
    if ok:
        admission.ticket = Ticket(request_id, tuple(subjects), tokens, second)
    else:
        admission.refused_by = REFUSALS[by]
        admission.subject = subjects[whose - 1].kind
        admission.retry_after_s = wait_ms / 1000
        admission.too_large = bool(too_large)
    return admission
