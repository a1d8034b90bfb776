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
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from tollway.errors import ApiError
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

# Admits a batch of calls, in order, exactly as if each were its own call.
# KEYS: per subject of the batch, its buckets hash and its in-flight set.
# ARGV: now_ms (0: Redis's clock), the number of subjects, per subject its rpm,
# tpm and concurrent (-1: none); then per call: request id, tokens, how many
# subjects it counts against and their indexes (1-based, into KEYS' pairs).
# Returns, per call, 12 values: admitted (1/0), refused by (1 requests, 2
# tokens, 3 concurrent), whose (the call's subject, 1-based), retry after (ms),
# too large (1/0), requests limit, remaining, reset (ms), the same for tokens,
# the second counted in.
ADMIT = """
local now_ms = tonumber(ARGV[1])
if now_ms == 0 then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
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
for j = 1, tonumber(ARGV[2]) do
  local s = {hash = KEYS[2 * j - 1], running = KEYS[2 * j], rpm = tonumber(ARGV[3 * j]),
             tpm = tonumber(ARGV[3 * j + 1]), conc = tonumber(ARGV[3 * j + 2]),
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
local out = {}
local pos = 3 + 3 * tonumber(ARGV[2])
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
ADMIT_FIELDS = 12

# Ends a batch of calls. KEYS as ADMIT's; ARGV per call: request id, the second
# counted in, tokens to add (may be negative: the call used less than it
# held), how many subjects and their indexes.
FINISH = """
local pos = 1
while pos <= #ARGV do
  local id, second, delta = ARGV[pos], tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
  local n = tonumber(ARGV[pos + 3])
  for k = 1, n do
    local j = tonumber(ARGV[pos + 3 + k])
    local hash, running = KEYS[2 * j - 1], KEYS[2 * j]
    redis.call('ZREM', running, id)
    if delta ~= 0 then
      local tail = tonumber(redis.call('HGET', hash, 'tail'))
      if tail ~= nil and second >= tail and redis.call('HEXISTS', hash, 't' .. second) == 1 then
        redis.call('HINCRBY', hash, 't' .. second, delta)
        redis.call('HINCRBY', hash, 'st', delta)
      end
    end
  end
  pos = pos + 4 + n
end
return 1
"""


def _script(text: str) -> str:
    return text.replace("WINDOW", str(WINDOW_S)).replace("STALE", str(STALE_CALL_S))


@dataclass(slots=True)
class _Asked:
    """An admit waiting for its batch's answer."""

    request_id: str
    subjects: Sequence[Subject]
    tokens: int
    answer: asyncio.Future[Admission]


class SharedLimiter:
    """Admits and finishes are batched: those asked for while a script call is
    on its way go together in the next one (one ``EVALSHA`` for the batch,
    decided call by call in order, as if each had been its own), so under load
    a call costs a fraction of a round trip and of a script run."""

    def __init__(self, url: str, fail_open: bool = True, prefix: str = "tollway") -> None:
        self.client = RespClient(url, connect_timeout_s=0.25, timeout_s=0.5)
        self.fail_open = fail_open
        self.unavailable = 0  # calls decided without Redis
        self.script_calls = 0  # admit and finish batches sent
        self._admit = Script(_script(ADMIT))
        self._finish = Script(_script(FINISH))
        self._down_until = 0.0
        self._logged_at = 0.0
        self._asked: list[_Asked] = []
        self._admitting: asyncio.Future[None] | None = None
        # Finishes Redis has not taken yet (the oldest dropped past MAX_UNFINISHED).
        self._unfinished: deque[tuple[Ticket, int]] = deque(maxlen=MAX_UNFINISHED)
        self._finishing: asyncio.Future[None] | None = None
        self.now_ms = 0  # tests set a clock; 0: Redis's own
        self.prefix = f"{prefix}:limits:{SLOT}:"

    async def admit(self, request_id: str, subjects: Sequence[Subject], tokens: int) -> Admission:
        if time.monotonic() < self._down_until:
            return self._without_redis(None)
        answer: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._asked.append(_Asked(request_id, subjects, tokens, answer))
        if self._admitting is None:
            self._admitting = asyncio.ensure_future(self._send_admits())
        return await answer

    async def finish(self, ticket: Ticket, used_tokens: int) -> None:
        """End the call's slot and settle its tokens; while Redis is down, kept
        (up to MAX_UNFINISHED) and sent once it answers again, so a blip does
        not leave slots taken until they go stale."""
        sending = self._queue_finish(ticket, used_tokens)
        if sending is not None:
            await asyncio.shield(sending)  # it runs until every finish is sent

    def _queue_finish(self, ticket: Ticket, used_tokens: int) -> asyncio.Future[None] | None:
        """Queue a finish; the batch sending it (None while Redis is down)."""
        self._unfinished.append((ticket, used_tokens))
        if time.monotonic() < self._down_until:
            return None
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._send_finishes())
        return self._finishing

    async def close(self) -> None:
        await self.client.close()

    async def _send_admits(self) -> None:
        try:
            while self._asked:
                batch, self._asked = self._asked[:MAX_BATCH], self._asked[MAX_BATCH:]
                await self._admit_batch(batch)
        finally:
            self._admitting = None

    async def _admit_batch(self, batch: list[_Asked]) -> None:
        keys, args, indexes = self._subjects_of([asked.subjects for asked in batch])
        args[:0] = [self.now_ms, len(keys) // 2]
        for asked, mine in zip(batch, indexes, strict=True):
            args += [asked.request_id, asked.tokens, len(mine), *mine]
        try:
            self.script_calls += 1
            found = await self.client.run(self._admit, keys, args)
        except (OSError, ReplyError) as exc:  # unreachable, timed out, or LOADING after a restart
            self._down(exc)
            for asked in batch:
                self._answer_without_redis(asked.answer)
            return
        for i, asked in enumerate(batch):
            row = found[i * ADMIT_FIELDS : (i + 1) * ADMIT_FIELDS]
            admission = _admission(row, asked.request_id, asked.subjects, asked.tokens)
            if not asked.answer.cancelled():
                asked.answer.set_result(admission)
            elif admission.ticket is not None:  # the caller left: its slot goes back
                self._queue_finish(admission.ticket, 0)

    async def _send_finishes(self) -> None:
        try:
            while self._unfinished:
                count = min(len(self._unfinished), MAX_BATCH)
                batch = [self._unfinished.popleft() for _ in range(count)]
                keys, _, indexes = self._subjects_of([ticket.subjects for ticket, _ in batch])
                args: list[str | int] = []
                for (ticket, used), mine in zip(batch, indexes, strict=True):
                    args += [ticket.request_id, ticket.second, used - ticket.tokens]
                    args += [len(mine), *mine]
                try:
                    self.script_calls += 1
                    await self.client.run(self._finish, keys, args)
                except (OSError, ReplyError) as exc:
                    self._unfinished.extendleft(reversed(batch))
                    self._down(exc)
                    return
        finally:
            self._finishing = None

    def _subjects_of(
        self, calls: list[Sequence[Subject]]
    ) -> tuple[list[str], list[str | int], list[list[int]]]:
        """The batch's subjects once each: their keys, their limits (ADMIT's
        arguments), and each call's subjects as indexes into them."""
        index: dict[str, int] = {}
        keys: list[str] = []
        limits: list[str | int] = []
        indexes = []
        for subjects in calls:
            mine = []
            for subject in subjects:
                j = index.get(subject.key)
                if j is None:
                    j = index[subject.key] = len(index) + 1
                    named = self.prefix + subject.key
                    keys += [f"{named}:buckets", f"{named}:running"]
                    rule = subject.limits
                    limits += [_arg(rule.rpm), _arg(rule.tpm), _arg(rule.concurrent)]
                mine.append(j)
            indexes.append(mine)
        return keys, limits, indexes

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
