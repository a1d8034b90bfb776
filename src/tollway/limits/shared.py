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
from tollway.limits.leases import MAX_SLOTS, SHARE, UNLIMITED, Lease, admit_locally
from tollway.limits.resp import ReplyError, RespClient, Script
from tollway.limits.rules import (
    STALE_CALL_S,
    WINDOW_S,
    Admission,
    Headroom,
    Subject,
    Ticket,
    limits_unavailable,
)

log = logging.getLogger(__name__)

SLOT = "{l}"  # one hash slot: a call's keys go to one script
DOWN_S = 1.0
MAX_UNFINISHED = 10_000
MAX_BATCH = 200  # calls a script call carries at most
NONE = -1
REFUSALS = {1: "requests", 2: "tokens", 3: "concurrent"}

# Ends, applied first by both scripts: calls that ended and leases whose
# second is over. Per end in ARGV: the second it was counted in, requests and
# tokens to add there (negative: given back), how many subjects, then per
# subject its index (1-based, into KEYS' pairs) and the in-flight member to
# remove ('' for none).
ENDS = """
local function apply_ends(pos, last)
  while pos <= last do
    local second, dr, dt = tonumber(ARGV[pos]), tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
    local n = tonumber(ARGV[pos + 3])
    for k = 1, n do
      local j, member = tonumber(ARGV[pos + 2 + 2 * k]), ARGV[pos + 3 + 2 * k]
      local hash, running = KEYS[2 * j - 1], KEYS[2 * j]
      if member ~= '' then redis.call('ZREM', running, member) end
      if dr ~= 0 or dt ~= 0 then
        local tail = tonumber(redis.call('HGET', hash, 'tail'))
        if tail ~= nil and second >= tail then
          if dr ~= 0 and redis.call('HEXISTS', hash, 'r' .. second) == 1 then
            redis.call('HINCRBY', hash, 'r' .. second, dr)
            redis.call('HINCRBY', hash, 'sr', dr)
          end
          if dt ~= 0 and redis.call('HEXISTS', hash, 't' .. second) == 1 then
            redis.call('HINCRBY', hash, 't' .. second, dt)
            redis.call('HINCRBY', hash, 'st', dt)
          end
        end
      end
    end
    pos = pos + 4 + 2 * n
  end
end
"""

# Admits a batch of calls, in order, exactly as if each were its own call, and
# grants leases (limits/leases.py) to the subjects that ask for one.
# KEYS: per subject of the batch, its buckets hash and its in-flight set.
# ARGV: now_ms (0: Redis's clock), the number of subjects, per subject its rpm,
# tpm and concurrent (-1: none) and the name of the lease it asks for ('':
# none); how many ARGV the ends take, the ends (ENDS); then per call: request
# id, tokens, how many subjects it counts against and their indexes.
# Returns now_ms, then per call 12 values: admitted (1/0), refused by (1
# requests, 2 tokens, 3 concurrent), whose (the call's subject, 1-based),
# retry after (ms), too large (1/0), requests limit, remaining, reset (ms),
# the same for tokens, the second counted in; then per subject its lease:
# requests, tokens, slots (-1: unlimited; all 0: no lease), and the requests
# and tokens left beyond it (-1: unlimited).
ADMIT = (
    ENDS
    + """
local now_ms = tonumber(ARGV[1])
if now_ms == 0 then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local nsub = tonumber(ARGV[2])
local ends_at = 3 + 4 * nsub
apply_ends(ends_at + 1, ends_at + tonumber(ARGV[ends_at]))
local second = math.floor(now_ms / 1000)
local oldest = second - WINDOW + 1
-- The window's running sums, its seconds older than the window taken out
-- (amortised: a busy subject moves its tail a second at a time).
local function window(hash)
  local got = redis.call('HMGET', hash, 'sr', 'st', 'tail')
  local rsum, tsum, tail = tonumber(got[1]) or 0, tonumber(got[2]) or 0, tonumber(got[3])
  if tail == nil or tail + WINDOW <= oldest then
    if tail ~= nil then redis.call('DEL', hash) end
    return 0, 0, oldest
  end
  if tail < oldest then
    local gone = {}
    for s = tail, oldest - 1 do
      local v = redis.call('HMGET', hash, 'r' .. s, 't' .. s)
      rsum = rsum - (tonumber(v[1]) or 0)
      tsum = tsum - (tonumber(v[2]) or 0)
      gone[#gone + 1] = 'r' .. s
      gone[#gone + 1] = 't' .. s
    end
    redis.call('HDEL', hash, unpack(gone))
    redis.call('HSET', hash, 'sr', rsum, 'st', tsum, 'tail', oldest)
    tail = oldest
  end
  return rsum, tsum, tail
end
local subjects = {}
for j = 1, nsub do
  local at = 4 * j - 1
  local s = {hash = KEYS[2 * j - 1], running = KEYS[2 * j], rpm = tonumber(ARGV[at]),
             tpm = tonumber(ARGV[at + 1]), conc = tonumber(ARGV[at + 2]), lease = ARGV[at + 3],
             added_r = 0, added_t = 0, busy = 0, started = {}}
  s.rsum, s.tsum, s.tail = window(s.hash)
  if s.conc >= 0 then
    redis.call('ZREMRANGEBYSCORE', s.running, '-inf', now_ms - STALE * 1000)
    s.busy = redis.call('ZCARD', s.running)
  end
  subjects[j] = s
end
-- When ``needed`` more fit under ``limit`` as the window's seconds leave
-- (read only for a refused call).
local function wait_for(s, kind, needed, total, limit)
  local dropped = 0
  for sec = oldest, second do
    dropped = dropped + (tonumber(redis.call('HGET', s.hash, kind .. sec)) or 0)
    if sec == second then dropped = dropped + (kind == 'r' and s.added_r or s.added_t) end
    if total - dropped + needed <= limit then
      return math.max((sec + WINDOW) * 1000 - now_ms, 0)
    end
  end
  return WINDOW * 1000
end
local out = {now_ms}
local pos = ends_at + 1 + tonumber(ARGV[ends_at])
while pos <= #ARGV do
  local id, tokens, n = ARGV[pos], tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
  local mine = {}
  for k = 1, n do mine[k] = subjects[tonumber(ARGV[pos + 2 + k])] end
  pos = pos + 3 + n
  local refused, whose, wait, too_large = 0, 0, 0, 0
  local rq_limit, rq_left, rq_reset = -1, nil, 0
  local tk_limit, tk_left, tk_reset = -1, nil, 0
  local function refuse(by, who, w)
    if w >= wait then refused, whose, wait = by, who, w end
  end
  for i = 1, n do
    local s = mine[i]
    local rsum, tsum = s.rsum + s.added_r, s.tsum + s.added_t
    local reset = 0
    if rsum > 0 then reset = math.max((s.tail + WINDOW) * 1000 - now_ms, 0) end
    if s.rpm >= 0 then
      local left = s.rpm - rsum - 1
      if left < 0 then refuse(1, i, wait_for(s, 'r', 1, rsum, s.rpm)) end
      if rq_left == nil or left < rq_left then rq_limit, rq_left, rq_reset = s.rpm, left, reset end
    end
    if s.tpm >= 0 then
      local left = s.tpm - tsum - tokens
      if tokens > s.tpm then
        refuse(2, i, WINDOW * 1000); too_large = 1
      elseif left < 0 then
        refuse(2, i, wait_for(s, 't', tokens, tsum, s.tpm))
      end
      if tk_left == nil or left < tk_left then tk_limit, tk_left, tk_reset = s.tpm, left, reset end
    end
    if s.conc >= 0 and s.busy >= s.conc then refuse(3, i, 1000) end
  end
  if refused == 0 then
    for i = 1, n do
      local s = mine[i]
      s.added_r, s.added_t = s.added_r + 1, s.added_t + tokens
      if s.conc >= 0 then
        s.busy = s.busy + 1
        s.started[#s.started + 1] = now_ms
        s.started[#s.started + 1] = id
      end
    end
  end
  local row = {refused == 0 and 1 or 0, refused, whose, wait, too_large,
               rq_limit, rq_left or 0, rq_reset, tk_limit, tk_left or 0, tk_reset, second}
  for _, v in ipairs(row) do out[#out + 1] = v end
end
-- Leases: a share of what is left, for a subject that asked and had a call
-- admitted here; none when some limited kind's share rounds to nothing.
for _, s in ipairs(subjects) do
  local lr, lt, lc = 0, 0, 0
  if s.lease ~= '' and s.added_r > 0 then
    lr, lt, lc = -1, -1, -1
    if s.rpm >= 0 then lr = math.floor((s.rpm - s.rsum - s.added_r) / SHARE) end
    if s.tpm >= 0 then lt = math.floor((s.tpm - s.tsum - s.added_t) / SHARE) end
    if s.conc >= 0 then lc = math.min(MAX_SLOTS, math.floor((s.conc - s.busy) / SHARE)) end
    if lr == 0 or lt == 0 or lc == 0 then
      lr, lt, lc = 0, 0, 0
    else
      s.added_r = s.added_r + math.max(lr, 0)
      s.added_t = s.added_t + math.max(lt, 0)
      for k = 1, lc do
        s.started[#s.started + 1] = now_ms
        s.started[#s.started + 1] = s.lease .. '#' .. k
      end
    end
  end
  out[#out + 1] = lr
  out[#out + 1] = lt
  out[#out + 1] = lc
  out[#out + 1] = s.rpm >= 0 and s.rpm - s.rsum - s.added_r or -1
  out[#out + 1] = s.tpm >= 0 and s.tpm - s.tsum - s.added_t or -1
end
for _, s in ipairs(subjects) do
  if s.added_r > 0 then
    redis.call('HINCRBY', s.hash, 'r' .. second, s.added_r)
    redis.call('HINCRBY', s.hash, 'sr', s.added_r)
    if s.added_t > 0 then
      redis.call('HINCRBY', s.hash, 't' .. second, s.added_t)
      redis.call('HINCRBY', s.hash, 'st', s.added_t)
    end
    redis.call('HSETNX', s.hash, 'tail', oldest)
    redis.call('EXPIRE', s.hash, WINDOW * 2)
  end
  if #s.started > 0 then
    redis.call('ZADD', s.running, unpack(s.started))
    redis.call('EXPIRE', s.running, STALE)
  end
end
return out
"""
)
ADMIT_FIELDS = 12
LEASE_FIELDS = 5

# Ends, and nothing else. KEYS as ADMIT's; ARGV: the ends.
FINISH = (
    ENDS
    + """
apply_ends(1, #ARGV)
return 1
"""
)


def _script(text: str) -> str:
    for name, value in (
        ("WINDOW", WINDOW_S),
        ("STALE", STALE_CALL_S),
        ("SHARE", SHARE),
        ("MAX_SLOTS", MAX_SLOTS),
    ):
        text = text.replace(name, str(value))
    return text


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
        self._admit = Script(_script(ADMIT))
        self._finish = Script(_script(FINISH))
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
        sending = None
        for end in self._ends_of(ticket, used_tokens):
            sending = self._queue_end(end)
        if sending is not None:
            await asyncio.shield(sending)  # it runs until every end is sent

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
        for subject in subjects:
            lease = self._leases.get(subject.key)
            if lease is None or not self._current(lease) or not lease.covers(tokens):
                return None
            found.append(lease)
        return found

    def _current(self, lease: Lease) -> bool:
        """Whether the lease's second still runs (closing it when not)."""
        if self.now_ms:  # a test's clock
            current = self.now_ms // 1000 == lease.second
        else:
            current = asyncio.get_running_loop().time() < lease.expires
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
                batch, self._asked = self._asked[:MAX_BATCH], self._asked[MAX_BATCH:]
                try:
                    await self._admit_batch(batch)
                except BaseException as exc:  # a bug: its calls fail, none waits forever
                    for asked in batch:
                        if not asked.answer.done():
                            asked.answer.set_exception(exc)
                    raise
        finally:
            self._admitting = None

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
