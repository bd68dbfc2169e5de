-- Lua for RedisStreamLog (adapters/redis/stream_log.py). Sections start with "-- @name"; each runs atomically.
-- Return codes: -1 not found, -2 stale generation, -3 stream already ended.
-- Leases ('lease' in meta, epoch milliseconds) use the Redis server's clock, so instances with skewed clocks agree.

-- @create
-- KEYS[1] meta; ARGV owner, kind, gen, last_seq, created, meta_json, ttl_ms
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'kind', ARGV[2], 'gen', ARGV[3], 'status', 'open',
  'last_seq', ARGV[4], 'created', ARGV[5], 'seen', '0', 'meta', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1

-- @advance
-- KEYS[1] meta; ARGV lease_ms. Bumps the generation of an open stream (writers holding the old one are fenced out)
-- and starts the new holder's lease.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status ~= 'open' then return -3 end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'lease', now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[1]))
return redis.call('HINCRBY', KEYS[1], 'gen', 1)

-- @write
-- KEYS[1] meta, KEYS[2] log; ARGV gen, type, payload_json, ts, maxlen, ttl_ms, final_status ('' = not terminal),
-- lease_ms[, data]. A non-terminal write extends the writer's lease. ARGV[9], when given, is the event's binary
-- attachment, stored raw as the entry's 'd' field (Lua strings are byte strings: no encoding on the way).
local fields = redis.call('HMGET', KEYS[1], 'gen', 'status')
if not fields[1] then return {-1, 0} end
local current = tonumber(fields[1])
if current ~= tonumber(ARGV[1]) then return {-2, current} end
if fields[2] ~= 'open' then return {-3, current} end
local seq = redis.call('HINCRBY', KEYS[1], 'last_seq', 1)
local entry = {'t', ARGV[2], 'p', ARGV[3], 'ts', ARGV[4]}
if ARGV[9] then
  entry[7], entry[8] = 'd', ARGV[9]
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], seq .. '-0', unpack(entry))
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'status', ARGV[7])
else
  local now = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'lease', now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[8]))
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {seq, current}

-- @renew
-- KEYS[1] meta; ARGV gen, lease_ms. A silent producer's heartbeat, fenced like a write.
local fields = redis.call('HMGET', KEYS[1], 'gen', 'status')
if not fields[1] then return -1 end
if tonumber(fields[1]) ~= tonumber(ARGV[1]) then return -2 end
if fields[2] ~= 'open' then return -3 end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'lease', now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[2]))
return 1

-- @reap
-- KEYS[1] meta, KEYS[2] log; ARGV type, payload_json, ts, maxlen, ttl_ms, final_status. Ends an open stream whose
-- lease ran out, bumping the generation first so the lapsed producer can never write again. 0 when not lapsed.
local fields = redis.call('HMGET', KEYS[1], 'status', 'lease')
if not fields[1] then return -1 end
if fields[1] ~= 'open' then return 0 end
local lease = tonumber(fields[2] or '0') or 0
local now = redis.call('TIME')
if lease <= 0 or lease > now[1] * 1000 + math.floor(now[2] / 1000) then return 0 end
redis.call('HINCRBY', KEYS[1], 'gen', 1)
local seq = redis.call('HINCRBY', KEYS[1], 'last_seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], seq .. '-0', 't', ARGV[1], 'p', ARGV[2], 'ts', ARGV[3])
redis.call('HSET', KEYS[1], 'status', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return seq

-- @touch
-- KEYS[1] meta; ARGV now. Records a reader without resurrecting an expired stream.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
return 1
