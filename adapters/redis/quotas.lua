-- Lua for RedisQuotaStore (adapters/redis/quotas.py). Sections start with "-- @name"; each runs atomically, with
-- the "lib" section prepended. Keys of one customer share a {hash tag}: KEYS[1] held (hash: n, tok, usd), KEYS[2]
-- expiry (zset: reservation id -> ms), KEYS[3] reservations (hash: id -> "tok usd"), then window counters.
-- Amounts are integers (usd in 1e-8 units), compared as Lua doubles (exact below 2^53) but always written from
-- their decimal strings (Lua would print a large double as 1e+15, which INCRBY refuses). A limit of -1 is unlimited.
-- Times are epoch milliseconds from the caller.

-- @lib
local function release(id)
  local v = redis.call('HGET', KEYS[3], id)
  if v then
    local tok, usd = string.match(v, '^(%d+) (%d+)$')
    redis.call('HINCRBY', KEYS[1], 'n', -1)
    if tok ~= '0' then redis.call('HINCRBY', KEYS[1], 'tok', '-' .. tok) end
    if usd ~= '0' then redis.call('HINCRBY', KEYS[1], 'usd', '-' .. usd) end
    redis.call('HDEL', KEYS[3], id)
  end
  redis.call('ZREM', KEYS[2], id)
end
local function purge(now_ms)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms)) do release(id) end
end

-- @reserve
-- KEYS held, exp, res, rpm, tpm, day, month
-- ARGV id, now_ms, expires_ms, tok, usd, lim_n, lim_rpm, lim_tpm, lim_day, lim_month, held_ttl_ms, minute_ttl_ms
local id = ARGV[1]
purge(ARGV[2])
if redis.call('HEXISTS', KEYS[3], id) == 1 then return {'ok'} end
local held = redis.call('HMGET', KEYS[1], 'n', 'tok', 'usd')
local n, htok, husd = tonumber(held[1] or '0'), tonumber(held[2] or '0'), tonumber(held[3] or '0')
local tok, usd = tonumber(ARGV[4]), tonumber(ARGV[5])
-- name, limit, settled in the window, held by calls in flight, asked by this call
local checks = {
  {'concurrent_streams', tonumber(ARGV[6]), 0, n, 1},
  {'requests_per_minute', tonumber(ARGV[7]), tonumber(redis.call('GET', KEYS[4]) or '0'), 0, 1},
  {'tokens_per_minute', tonumber(ARGV[8]), tonumber(redis.call('GET', KEYS[5]) or '0'), htok, tok},
  {'daily_budget_usd', tonumber(ARGV[9]), tonumber(redis.call('GET', KEYS[6]) or '0'), husd, usd},
  {'monthly_budget_usd', tonumber(ARGV[10]), tonumber(redis.call('GET', KEYS[7]) or '0'), husd, usd},
}
for _, c in ipairs(checks) do
  if c[2] >= 0 and c[3] + c[4] + c[5] > c[2] then return {c[1], c[2], c[3], c[4]} end
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HINCRBY', KEYS[1], 'tok', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'usd', ARGV[5])
redis.call('HSET', KEYS[3], id, ARGV[4] .. ' ' .. ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], id)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[11]) end
redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], ARGV[12])
return {'ok'}

-- @settle
-- KEYS held, exp, res, tpm, day, month; ARGV id ('' = none), tok, usd, minute_ttl_ms, day_ttl_ms, month_ttl_ms
if ARGV[1] ~= '' then release(ARGV[1]) end
if ARGV[2] ~= '0' then
  redis.call('INCRBY', KEYS[4], ARGV[2])
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
if ARGV[3] ~= '0' then
  redis.call('INCRBY', KEYS[5], ARGV[3])
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
  redis.call('INCRBY', KEYS[6], ARGV[3])
  redis.call('PEXPIRE', KEYS[6], ARGV[6])
end
return 1

-- @renew
-- KEYS held, exp, res; ARGV expires_ms, held_ttl_ms, id...
local renewed = 0
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('ZADD', KEYS[2], 'XX', ARGV[1], ARGV[i])
    renewed = renewed + 1
  end
end
if renewed > 0 then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
end
return renewed

-- @raise
-- KEYS day, month; ARGV day_units, month_units, day_ttl_ms, month_ttl_ms
for i = 1, 2 do
  if tonumber(ARGV[i]) > tonumber(redis.call('GET', KEYS[i]) or '0') then
    redis.call('SET', KEYS[i], ARGV[i], 'PX', ARGV[i + 2])
  end
end
return 1

-- @usage
-- KEYS held, exp, res, rpm, tpm, day, month; ARGV now_ms. Purges like reserve, then reads every counter.
purge(ARGV[1])
local held = redis.call('HMGET', KEYS[1], 'n', 'tok', 'usd')
return {held[1] or '0', held[2] or '0', held[3] or '0', redis.call('GET', KEYS[4]) or '0',
  redis.call('GET', KEYS[5]) or '0', redis.call('GET', KEYS[6]) or '0', redis.call('GET', KEYS[7]) or '0'}
