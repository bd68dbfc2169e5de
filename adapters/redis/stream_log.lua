-- Lua for RedisStreamLog (adapters/redis/stream_log.py). Sections start with "-- @name"; each runs atomically.
-- Return codes: -1 not found, -2 stale generation, -3 stream already ended.

-- @create
-- KEYS[1] meta; ARGV owner, kind, gen, last_seq, created, meta_json, ttl_ms
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'kind', ARGV[2], 'gen', ARGV[3], 'status', 'open',
  'last_seq', ARGV[4], 'created', ARGV[5], 'seen', '0', 'meta', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1

-- @advance
-- KEYS[1] meta. Bumps the generation of an open stream: writers holding the old one are fenced out.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status ~= 'open' then return -3 end
return redis.call('HINCRBY', KEYS[1], 'gen', 1)

-- @write
-- KEYS[1] meta, KEYS[2] log; ARGV gen, type, payload_json, ts, maxlen, ttl_ms, final_status ('' = not terminal)
local fields = redis.call('HMGET', KEYS[1], 'gen', 'status')
if not fields[1] then return {-1, 0} end
local current = tonumber(fields[1])
if current ~= tonumber(ARGV[1]) then return {-2, current} end
if fields[2] ~= 'open' then return {-3, current} end
local seq = redis.call('HINCRBY', KEYS[1], 'last_seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], seq .. '-0', 't', ARGV[2], 'p', ARGV[3], 'ts', ARGV[4])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'status', ARGV[7]) end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {seq, current}

-- @touch
-- KEYS[1] meta; ARGV now. Records a reader without resurrecting an expired stream.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
return 1
