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

import logging
import time
from collections import deque
from collections.abc import Sequence

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
NONE = -1
REFUSALS = {1: "requests", 2: "tokens", 3: "concurrent"}

# KEYS: per subject, its buckets hash and its in-flight set.
# ARGV: now_ms (0: Redis's clock), request id, tokens, then per subject rpm, tpm,
# concurrent (-1: none). Returns: admitted (1/0), refused by (1 requests, 2
# tokens, 3 concurrent), whose (subject index, 1-based), retry after (ms), too
# large (1/0), requests limit, remaining, reset (ms), the same for tokens, the
# second counted in.
ADMIT = """
local now_ms = tonumber(ARGV[1])
if now_ms == 0 then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local id, tokens = ARGV[2], tonumber(ARGV[3])
local second = math.floor(now_ms / 1000)
local oldest = second - WINDOW + 1
local n = #KEYS / 2
local refused, whose, wait, too_large = 0, 0, 0, 0
local rq_limit, rq_left, rq_reset = -1, nil, 0
local tk_limit, tk_left, tk_reset = -1, nil, 0
local function refuse(by, who, w)
  if w >= wait then refused, whose, wait = by, who, w end
end
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
-- When ``needed`` more fit under ``limit`` as the window's seconds leave
-- (read only for a refused call).
local function wait_for(hash, kind, needed, total, limit)
  local dropped = 0
  for s = oldest, second do
    dropped = dropped + (tonumber(redis.call('HGET', hash, kind .. s)) or 0)
    if total - dropped + needed <= limit then
      return math.max((s + WINDOW) * 1000 - now_ms, 0)
    end
  end
  return WINDOW * 1000
end
for i = 1, n do
  local hash, running = KEYS[2 * i - 1], KEYS[2 * i]
  local rsum, tsum, tail = window(hash)
  local reset = 0
  if rsum > 0 then reset = math.max((tail + WINDOW) * 1000 - now_ms, 0) end
  local rpm, tpm = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local conc = tonumber(ARGV[3 * i + 3])
  if rpm >= 0 then
    local left = rpm - rsum - 1
    if left < 0 then refuse(1, i, wait_for(hash, 'r', 1, rsum, rpm)) end
    if rq_left == nil or left < rq_left then rq_limit, rq_left, rq_reset = rpm, left, reset end
  end
  if tpm >= 0 then
    local left = tpm - tsum - tokens
    if tokens > tpm then
      refuse(2, i, WINDOW * 1000); too_large = 1
    elseif left < 0 then
      refuse(2, i, wait_for(hash, 't', tokens, tsum, tpm))
    end
    if tk_left == nil or left < tk_left then tk_limit, tk_left, tk_reset = tpm, left, reset end
  end
  if conc >= 0 then
    redis.call('ZREMRANGEBYSCORE', running, '-inf', now_ms - STALE * 1000)
    if redis.call('ZCARD', running) >= conc then refuse(3, i, 1000) end
  end
end
if refused == 0 then
  for i = 1, n do
    local hash, running = KEYS[2 * i - 1], KEYS[2 * i]
    redis.call('HINCRBY', hash, 'r' .. second, 1)
    redis.call('HINCRBY', hash, 'sr', 1)
    if tokens > 0 then
      redis.call('HINCRBY', hash, 't' .. second, tokens)
      redis.call('HINCRBY', hash, 'st', tokens)
    end
    redis.call('HSETNX', hash, 'tail', oldest)
    redis.call('EXPIRE', hash, WINDOW * 2)
    if tonumber(ARGV[3 * i + 3]) >= 0 then
      redis.call('ZADD', running, now_ms, id)
      redis.call('EXPIRE', running, STALE)
    end
  end
end
return {refused == 0 and 1 or 0, refused, whose, wait, too_large,
        rq_limit, rq_left or 0, rq_reset, tk_limit, tk_left or 0, tk_reset, second}
"""

# KEYS as ADMIT's; ARGV: request id, the second counted in, tokens to add (may
# be negative: the call used less than it held).
FINISH = """
local id, second, delta = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, #KEYS / 2 do
  local hash, running = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZREM', running, id)
  local tail = tonumber(redis.call('HGET', hash, 'tail'))
  if delta ~= 0 and tail ~= nil and second >= tail
      and redis.call('HEXISTS', hash, 't' .. second) == 1 then
    redis.call('HINCRBY', hash, 't' .. second, delta)
    redis.call('HINCRBY', hash, 'st', delta)
  end
end
return 1
"""


def _script(text: str) -> str:
    return text.replace("WINDOW", str(WINDOW_S)).replace("STALE", str(STALE_CALL_S))


class SharedLimiter:
    def __init__(self, url: str, fail_open: bool = True, prefix: str = "tollway") -> None:
        self.client = RespClient(url, connect_timeout_s=0.25, timeout_s=0.5)
        self.fail_open = fail_open
        self.unavailable = 0  # calls decided without Redis
        self._admit = Script(_script(ADMIT))
        self._finish = Script(_script(FINISH))
        self._down_until = 0.0
        self._logged_at = 0.0
        # Finishes Redis has not taken yet (the oldest dropped past MAX_UNFINISHED).
        self._unfinished: deque[tuple[Ticket, int]] = deque(maxlen=MAX_UNFINISHED)
        self.now_ms = 0  # tests set a clock; 0: Redis's own
        self.prefix = f"{prefix}:limits:{SLOT}:"

    async def admit(self, request_id: str, subjects: Sequence[Subject], tokens: int) -> Admission:
        if time.monotonic() < self._down_until:
            return self._without_redis(None)
        keys = self._keys(subjects)
        args: list[str | int] = [self.now_ms, request_id, tokens]
        for subject in subjects:
            limits = subject.limits
            args += [_arg(limits.rpm), _arg(limits.tpm), _arg(limits.concurrent)]
        try:
            found = await self.client.run(self._admit, keys, args)
        except (OSError, ReplyError) as exc:  # unreachable, timed out, or LOADING after a restart
            return self._without_redis(exc)
        return _admission(found, request_id, subjects, tokens)

    async def finish(self, ticket: Ticket, used_tokens: int) -> None:
        """End the call's slot and settle its tokens; while Redis is down, kept
        (up to MAX_UNFINISHED) and sent once it answers again, so a blip does
        not leave slots taken until they go stale."""
        self._unfinished.append((ticket, used_tokens))
        if time.monotonic() < self._down_until:
            return
        while self._unfinished:  # (taken before the await: concurrent finishes never share one)
            ticket, used_tokens = self._unfinished.popleft()
            args: list[str | int] = [ticket.request_id, ticket.second, used_tokens - ticket.tokens]
            try:
                await self.client.run(self._finish, self._keys(ticket.subjects), args)
            except (OSError, ReplyError) as exc:
                self._unfinished.appendleft((ticket, used_tokens))
                self._down(exc)
                return

    async def close(self) -> None:
        await self.client.close()

    def _keys(self, subjects: Sequence[Subject]) -> list[str]:
        keys = []
        for subject in subjects:
            keys += [f"{self.prefix}{subject.key}:buckets", f"{self.prefix}{subject.key}:running"]
        return keys

    def _without_redis(self, exc: BaseException | None) -> Admission:
        if exc is not None:
            self._down(exc)
        self.unavailable += 1
        if self.fail_open:
            return Admission(None)  # passes, counted nowhere
        raise limits_unavailable()

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
