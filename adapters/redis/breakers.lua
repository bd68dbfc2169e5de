-- Circuit breaker records (adapters/redis/breakers.py): the Lua twin of domain/health.py's `admit` and `record`.
-- One JSON record per model: s state, c consecutive failures, ou open until, p probes in flight, pu probes lost
-- after, at changed at, b buckets [[index, calls, failures], ...] oldest first, l latencies (ms) oldest first.
-- Times are integer milliseconds passed in by the caller, so these scripts and the domain compute the same records
-- (tests/integration/test_redis_breakers.py replays random histories through both and compares).

-- @admit
-- KEYS[1] record; ARGV now_ms, open_ms, half_open_probes, ttl_ms
-- -> {admitted 0|1, state, probe 0|1, retry_after_ms, transition from ('' for none), reason}
local raw = redis.call('GET', KEYS[1])
if not raw then
  return {1, 'closed', 0, 0, '', ''}
end
local r = cjson.decode(raw)
local now = tonumber(ARGV[1])
local open_ms = tonumber(ARGV[2])
if r.s == 'closed' then
  return {1, 'closed', 0, 0, '', ''}
end
if r.s == 'open' then
  if now < r.ou then
    return {0, 'open', 0, r.ou - now, '', ''}
  end
  r.s = 'half_open'
  r.p = 1
  r.pu = now + open_ms
  r.at = now
  redis.call('SET', KEYS[1], cjson.encode(r), 'PX', ARGV[4])
  return {1, 'half_open', 1, 0, 'open', 'cool_down_elapsed'}
end
local probes = r.p
if now >= r.pu then
  probes = 0 -- the probes in flight are presumed lost (their process died): free their slots
end
if probes < tonumber(ARGV[3]) then
  r.p = probes + 1
  r.pu = now + open_ms
  redis.call('SET', KEYS[1], cjson.encode(r), 'PX', ARGV[4])
  return {1, 'half_open', 1, 0, '', ''}
end
return {0, 'half_open', 0, r.pu - now, '', ''}

-- @record
-- KEYS[1] record; ARGV now_ms, verdict, probe 0|1, latency_ms, bucket_ms, window_buckets, latency_samples,
-- failure_threshold, error_rate_threshold, min_volume, open_ms, ttl_ms
-- -> {record JSON ('' when there is none), transition from ('' for none), to, reason}
local raw = redis.call('GET', KEYS[1])
local now = tonumber(ARGV[1])
local verdict = ARGV[2]
local probe = ARGV[3] == '1'
local r
if raw then
  r = cjson.decode(raw)
else
  r = {s = 'closed', c = 0, ou = 0, p = 0, pu = 0, at = 0, b = {}, l = {}}
end
local function save()
  local out = cjson.encode(r)
  redis.call('SET', KEYS[1], out, 'PX', ARGV[12])
  return out
end
local function open()
  r.s = 'open'
  r.ou = now + tonumber(ARGV[11])
  r.p = 0
  r.pu = 0
  r.at = now
end
if verdict == 'neutral' then
  if probe and r.s == 'half_open' and r.p > 0 then
    r.p = r.p - 1
    return {save(), '', '', ''}
  end
  return {raw or '', '', '', ''}
end
local failed = verdict == 'failure'
local index = math.floor(now / tonumber(ARGV[5]))
local live = {}
for _, b in ipairs(r.b) do
  if b[1] > index - tonumber(ARGV[6]) then
    live[#live + 1] = b
  end
end
local failure = 0
if failed then
  failure = 1
end
if #live > 0 and live[#live][1] == index then
  live[#live] = {index, live[#live][2] + 1, live[#live][3] + failure}
else
  live[#live + 1] = {index, 1, failure}
end
r.b = live
if failed then
  r.c = r.c + 1
else
  r.c = 0
  local samples = {}
  for _, v in ipairs(r.l) do
    samples[#samples + 1] = v
  end
  samples[#samples + 1] = tonumber(ARGV[4])
  while #samples > tonumber(ARGV[7]) do
    table.remove(samples, 1)
  end
  r.l = samples
end
local before = r.s
if before == 'closed' and failed then
  local reason = ''
  if r.c >= tonumber(ARGV[8]) then
    reason = 'consecutive_failures'
  else
    local calls, failures = 0, 0
    for _, b in ipairs(r.b) do
      calls = calls + b[2]
      failures = failures + b[3]
    end
    if calls >= tonumber(ARGV[10]) and failures / calls >= tonumber(ARGV[9]) then
      reason = 'error_rate'
    end
  end
  if reason == '' then
    return {save(), '', '', ''}
  end
  open()
  return {save(), before, 'open', reason}
end
if before == 'half_open' and probe then
  if failed then
    open()
    return {save(), before, 'open', 'probe_failed'}
  end
  r.s = 'closed'
  r.p = 0
  r.pu = 0
  r.at = now
  r.b = {}
  return {save(), before, 'closed', 'probe_succeeded'}
end
return {save(), '', '', ''}
