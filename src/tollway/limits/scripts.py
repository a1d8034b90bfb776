"""The limiter's two Redis scripts (limits/shared.py sends them): ADMIT
decides a batch of calls and grants leases, FINISH applies ends. Both apply
the ends queued since the last script call first."""

from __future__ import annotations

from tollway.limits.leases import MAX_SLOTS, SHARE
from tollway.limits.rules import STALE_CALL_S, WINDOW_S

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


def script_text(text: str) -> str:
    """The script with its constants written in."""
    for name, value in (
        ("WINDOW", WINDOW_S),
        ("STALE", STALE_CALL_S),
        ("SHARE", SHARE),
        ("MAX_SLOTS", MAX_SLOTS),
    ):
        text = text.replace(name, str(value))
    return text
