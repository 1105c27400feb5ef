"""The Lua scripts of the rate-limit sliding log (routing/ratelimit.py), and running them in Redis.

Each scope's window is a pair of Redis keys: its log (sorted set of admitted request ids, scored by when) and
its tokens (hash of each request's tokens, with their running total under `_total`). ADMIT checks and counts
every scope at once, SETTLE replaces a request's token estimate by its actual count, RELEASE gives requests back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from config.redis_clients import get_redis

# Shared by the scripts. KEYS come in pairs per scope: its log (sorted set), its tokens (hash).
COMMON = """
local function clock(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')  -- one clock for every process, whatever their hosts' clocks say
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Drops what left the window (admitted at or before `horizon`) from the log, its tokens from the total.
local function expire(log, counts, horizon)
  while true do
    local old = redis.call('ZRANGEBYSCORE', log, '-inf', horizon, 'LIMIT', 0, 500)
    if #old == 0 then return end
    local amounts = redis.call('HMGET', counts, unpack(old))
    local gone = 0
    for i = 1, #amounts do gone = gone + (tonumber(amounts[i]) or 0) end
    redis.call('ZREM', log, unpack(old))
    redis.call('HDEL', counts, unpack(old))
    if gone ~= 0 then redis.call('HINCRBY', counts, '_total', -gone) end
    if #old < 500 then return end
  end
end
"""

# ARGV: now (ms, '' = Redis's clock), window ms, n, n members, n token amounts, then per scope its requests
# and tokens limits (0 = none). KEYS: the scopes' pairs, then optionally one more: a response-cache key whose
# entry, when it exists, makes the requests count no tokens (no provider will process them). Returns
# {admitted 0|1, then per scope: requests counted, tokens counted, ms until its window is empty, ms until the
# refused requests' fit (0 fits, -1 never), the same for tokens; then, with a cache key, 1 if it counted none}.
ADMIT = (
    COMMON
    + """
local now = clock(ARGV[1])
local window = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local scopes = math.floor(#KEYS / 2)
local free = #KEYS % 2 == 1 and redis.call('EXISTS', KEYS[#KEYS]) == 1
local function tokens_of(i)
  if free then return 0 end
  return tonumber(ARGV[3 + n + i])
end
local wanted = 0
for i = 1, n do wanted = wanted + tokens_of(i) end

-- ms until the oldest entries of `log` holding `free` requests (by_tokens: tokens) have left the window
local function freed_after(log, counts, free, by_tokens)
  local start = 0
  local got = 0
  while true do
    local rows = redis.call('ZRANGE', log, start, start + 199, 'WITHSCORES')
    if #rows == 0 then return window end
    local amounts = {}
    if by_tokens then
      local members = {}
      for i = 1, #rows, 2 do members[#members + 1] = rows[i] end
      amounts = redis.call('HMGET', counts, unpack(members))
    end
    for i = 1, #rows, 2 do
      if by_tokens then got = got + (tonumber(amounts[(i + 1) / 2]) or 0) else got = got + 1 end
      if got >= free then return math.max(1, tonumber(rows[i + 1]) + window - now) end
    end
    start = start + 200
  end
end

local state = {}
local admitted = 1
for s = 1, scopes do
  local log, counts = KEYS[2 * s - 1], KEYS[2 * s]
  expire(log, counts, now - window)
  local count = redis.call('ZCARD', log)
  local used = tonumber(redis.call('HGET', counts, '_total') or '0')
  local rpm, tpm = tonumber(ARGV[3 + 2 * n + 2 * s - 1]), tonumber(ARGV[3 + 2 * n + 2 * s])
  local wait_requests, wait_tokens = 0, 0
  if rpm > 0 and count + n > rpm then
    if n > rpm then wait_requests = -1 else wait_requests = freed_after(log, counts, count + n - rpm, false) end
  end
  if tpm > 0 and used + wanted > tpm then
    if wanted > tpm then wait_tokens = -1 else wait_tokens = freed_after(log, counts, used + wanted - tpm, true) end
  end
  if wait_requests ~= 0 or wait_tokens ~= 0 then admitted = 0 end
  state[s] = {count, used, wait_requests, wait_tokens}
end

local out = {admitted}
for s = 1, scopes do
  local log, counts = KEYS[2 * s - 1], KEYS[2 * s]
  local count, used = state[s][1], state[s][2]
  if admitted == 1 then
    for i = 1, n do
      local member, tokens = ARGV[3 + i], tokens_of(i)
      redis.call('ZADD', log, now, member)
      redis.call('HSET', counts, member, tokens)
    end
    if wanted ~= 0 then redis.call('HINCRBY', counts, '_total', wanted) end
    redis.call('PEXPIRE', log, window + 1000)
    redis.call('PEXPIRE', counts, window + 1000)
    count, used = count + n, used + wanted
  end
  local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
  local empty = 0
  if #newest > 0 then empty = math.max(0, tonumber(newest[2]) + window - now) end
  out[#out + 1] = count
  out[#out + 1] = used
  out[#out + 1] = empty
  out[#out + 1] = state[s][3]
  out[#out + 1] = state[s][4]
end
if #KEYS % 2 == 1 then out[#out + 1] = free and 1 or 0 end
return out
"""
)

# ARGV: now (ms or ''), window ms, member, actual tokens. The member's tokens become the actual count in every
# scope whose window still holds it; one that has left the window (or was never counted) is not touched.
SETTLE = (
    COMMON
    + """
local now = clock(ARGV[1])
local window = tonumber(ARGV[2])
local member, tokens = ARGV[3], tonumber(ARGV[4])
for s = 1, #KEYS / 2 do
  local log, counts = KEYS[2 * s - 1], KEYS[2 * s]
  local at = redis.call('ZSCORE', log, member)
  if at and tonumber(at) > now - window then
    local before = tonumber(redis.call('HGET', counts, member) or '0')
    if before ~= tokens then
      redis.call('HSET', counts, member, tokens)
      redis.call('HINCRBY', counts, '_total', tokens - before)
    end
  end
end
return 1
"""
)

# ARGV: members. Takes the members (requests that will never run) out of every scope, tokens and all.
RELEASE = """
for s = 1, #KEYS / 2 do
  local log, counts = KEYS[2 * s - 1], KEYS[2 * s]
  local amounts = redis.call('HMGET', counts, unpack(ARGV))
  local gone = 0
  for i = 1, #amounts do gone = gone + (tonumber(amounts[i]) or 0) end
  redis.call('ZREM', log, unpack(ARGV))
  redis.call('HDEL', counts, unpack(ARGV))
  if gone ~= 0 and redis.call('EXISTS', counts) == 1 then redis.call('HINCRBY', counts, '_total', -gone) end
end
return 1
"""
SHA = {script: hashlib.sha1(script.encode()).hexdigest() for script in (ADMIT, SETTLE, RELEASE)}  # noqa: S324


async def run_lua(script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    redis = get_redis()
    assert redis is not None
    try:
        return await redis.evalsha(SHA[script], len(keys), *keys, *args)
    except NoScriptError:  # a restarted or flushed Redis: EVAL loads the script again
        return await redis.eval(script, len(keys), *keys, *args)
