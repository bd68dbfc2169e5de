-- Lua for RedisQuotaStore (adapters/redis/quotas.py). Sections start with "-- @name"; each runs atomically, with
-- the "lib" section prepended. Keys of one customer share a {hash tag}: KEYS[1] held (hash: n, tok, usd), KEYS[2]
-- expiry (zset: reservation id -> ms), KEYS[3] reservations (hash: id -> "tok usd[ kid]"), then window counters
-- (the customer's, then its API key's when the call is held against the key's own limits too).
-- Amounts are integers (usd in 1e-8 units), compared as Lua doubles (exact below 2^53) but always written from
-- their decimal strings (Lua would print a large double as 1e+15, which INCRBY refuses). A limit of -1 is unlimited.
-- Times are epoch milliseconds from the caller.

-- @lib
-- A reservation's entry in KEYS[3] is "tok usd" or "tok usd kid": with a key id, the held hash KEYS[1] also counts
-- it under that key's fields (k:<kid>:n, :tok, :usd), so the key's calls in flight live in the customer's slot.
local function unhold(field, amount)
  if amount ~= '0' then redis.call('HINCRBY', KEYS[1], field, '-' .. amount) end
end
local function release(id)
  local v = redis.call('HGET', KEYS[3], id)
  if v then
    local tok, usd, kid = string.match(v, '^(%d+) (%d+) ?(.*)$')
    redis.call('HINCRBY', KEYS[1], 'n', -1)
    unhold('tok', tok)
    unhold('usd', usd)
    if kid ~= '' then
      local k = 'k:' .. kid .. ':'
      if redis.call('HINCRBY', KEYS[1], k .. 'n', -1) <= 0 then
        redis.call('HDEL', KEYS[1], k .. 'n', k .. 'tok', k .. 'usd')  -- the key's last call: keep the hash small
      else
        unhold(k .. 'tok', tok)
        unhold(k .. 'usd', usd)
      end
    end
    redis.call('HDEL', KEYS[3], id)
  end
  redis.call('ZREM', KEYS[2], id)
end
local function purge(now_ms)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms)) do release(id) end
end
local function counted(i)
  return tonumber(redis.call('GET', KEYS[i]) or '0')
end

-- @reserve
-- KEYS held, exp, res, rpm, tpm, day, month [, key rpm, key tpm, key day, key month]
-- ARGV id, now_ms, expires_ms, tok, usd, lim_n, lim_rpm, lim_tpm, lim_day, lim_month, held_ttl_ms, minute_ttl_ms,
--      kid ('' = no key limits), klim_n, klim_rpm, klim_tpm, klim_day, klim_month
local id, kid = ARGV[1], ARGV[13]
purge(ARGV[2])
if redis.call('HEXISTS', KEYS[3], id) == 1 then return {'ok'} end
local tok, usd = tonumber(ARGV[4]), tonumber(ARGV[5])
-- Each check: name, limit, settled in the window, held by calls in flight, asked by this call, scope.
local checks = {}
local function scope(name, field, lim, win)
  local held = redis.call('HMGET', KEYS[1], field .. 'n', field .. 'tok', field .. 'usd')
  local n, htok, husd = tonumber(held[1] or '0'), tonumber(held[2] or '0'), tonumber(held[3] or '0')
  -- name, index of its limit in ARGV, of its window counter in KEYS (0: none), held in flight, asked by this call
  local rows = {
    {'concurrent_streams', lim, 0, n, 1},
    {'requests_per_minute', lim + 1, win, 0, 1},
    {'tokens_per_minute', lim + 2, win + 1, htok, tok},
    {'daily_budget_usd', lim + 3, win + 2, husd, usd},
    {'monthly_budget_usd', lim + 4, win + 3, husd, usd},
  }
  for _, r in ipairs(rows) do
    local limit = tonumber(ARGV[r[2]])
    if limit >= 0 then
      local used = 0
      if r[3] > 0 then used = counted(r[3]) end
      checks[#checks + 1] = {r[1], limit, used, r[4], r[5], name}
    end
  end
end
scope('customer', '', 6, 4)
if kid ~= '' then scope('key', 'k:' .. kid .. ':', 14, 8) end
for _, c in ipairs(checks) do
  if c[3] + c[4] + c[5] > c[2] then return {c[1], c[2], c[3], c[4], c[6]} end
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HINCRBY', KEYS[1], 'tok', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'usd', ARGV[5])
local entry = ARGV[4] .. ' ' .. ARGV[5]
if kid ~= '' then
  local k = 'k:' .. kid .. ':'
  redis.call('HINCRBY', KEYS[1], k .. 'n', 1)
  redis.call('HINCRBY', KEYS[1], k .. 'tok', ARGV[4])
  redis.call('HINCRBY', KEYS[1], k .. 'usd', ARGV[5])
  entry = entry .. ' ' .. kid
end
redis.call('HSET', KEYS[3], id, entry)
redis.call('ZADD', KEYS[2], ARGV[3], id)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[11]) end
redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], ARGV[12])
if kid ~= '' then
  redis.call('INCR', KEYS[8])
  redis.call('PEXPIRE', KEYS[8], ARGV[12])
end
-- Where each limit checked stands now, this call counted: its request in the minute, its holds in flight.
local answer = {'ok'}
for _, c in ipairs(checks) do
  local used, holding = c[3], c[4] + c[5]
  if c[1] == 'requests_per_minute' then used, holding = c[3] + c[5], c[4] end
  for _, v in ipairs({c[1], c[6], c[2], used, holding}) do answer[#answer + 1] = v end
end
return answer

-- @settle
-- KEYS held, exp, res, tpm, day, month [, key tpm, key day, key month]
-- ARGV id ('' = none), tok, usd, minute_ttl_ms, day_ttl_ms, month_ttl_ms
if ARGV[1] ~= '' then release(ARGV[1]) end
local function count(first)
  if ARGV[2] ~= '0' then
    redis.call('INCRBY', KEYS[first], ARGV[2])
    redis.call('PEXPIRE', KEYS[first], ARGV[4])
  end
  if ARGV[3] ~= '0' then
    redis.call('INCRBY', KEYS[first + 1], ARGV[3])
    redis.call('PEXPIRE', KEYS[first + 1], ARGV[5])
    redis.call('INCRBY', KEYS[first + 2], ARGV[3])
    redis.call('PEXPIRE', KEYS[first + 2], ARGV[6])
  end
end
count(4)
if #KEYS > 6 then count(7) end
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
-- KEYS held, exp, res, rpm, tpm, day, month (the customer's or one key's windows); ARGV now_ms, held field prefix
-- ('' for the customer, 'k:<kid>:' for a key). Purges like reserve, then reads every counter.
purge(ARGV[1])
local held = redis.call('HMGET', KEYS[1], ARGV[2] .. 'n', ARGV[2] .. 'tok', ARGV[2] .. 'usd')
return {held[1] or '0', held[2] or '0', held[3] or '0', redis.call('GET', KEYS[4]) or '0',
  redis.call('GET', KEYS[5]) or '0', redis.call('GET', KEYS[6]) or '0', redis.call('GET', KEYS[7]) or '0'}
