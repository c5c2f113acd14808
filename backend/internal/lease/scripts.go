package lease

import "github.com/valkey-io/valkey-go"

// Keys of one user (all share the {user} hash tag, so one script may touch them in a cluster):
//
//	<prefix>:{<user>}:leases  sorted set: member = lease id, score = expiry (ms, Valkey server time)
//	<prefix>:{<user>}:queue   sorted set: member = waiter ticket, score = arrival (us, server time)
//	<prefix>:{<user>}:qexp    sorted set: member = waiter ticket, score = ticket expiry (ms)
//
// Every script sets each key it writes to expire one second after its latest score, so a key
// outlives its last live member by at most a second and nothing grows forever.
const (
	suffixLeases   = "leases"
	suffixQueue    = "queue"
	suffixQueueExp = "qexp"
)

// key builds every key this package uses.
func key(prefix, user, suffix string) string {
	return prefix + ":{" + user + "}:" + suffix
}

// userKeys are the keys of one user, in the order the scripts expect them.
func userKeys(prefix, user string) []string {
	return []string{key(prefix, user, suffixLeases), key(prefix, user, suffixQueue), key(prefix, user, suffixQueueExp)}
}

// luaNow and luaExpire are shared by the scripts below: server time in milliseconds, and a
// PEXPIRE that keeps a sorted set alive one second past its highest score (in ms).
const (
	luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function expire(k, ref)
  local top = redis.call('ZRANGE', ref, -1, -1, 'WITHSCORES')
  if #top == 2 then
    redis.call('PEXPIRE', k, math.max(1, math.floor(tonumber(top[2]) - now) + 1000))
  end
end
local function ms(x) return string.format('%.0f', x) end
`
)

// acquireScript trims expired leases and lapsed waiters, then admits the caller if fewer waiters
// stand ahead of it than there are free slots; otherwise it queues the caller (FIFO by server
// arrival time) when ARGV[4] > 0.
//
//	KEYS: leases, queue, qexp
//	ARGV: [1] lease id, also the waiter's ticket; [2] limit; [3] lease TTL ms;
//	      [4] ticket lifetime ms (0: do not queue)
//	reply: {admitted 0|1, leases in use (including this one when admitted), queue position (1 = head; 0 = not queued)}
//
// It is not retryable: a retry after a lost reply could add a second lease.
var acquireScript = valkey.NewLuaScript(luaNow + `
local id = ARGV[1]
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
if #lapsed > 0 then
  for i = 1, #lapsed do redis.call('ZREM', KEYS[2], lapsed[i]) end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
local inuse = redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[2], id)
local queued = rank ~= false
if not queued then rank = redis.call('ZCARD', KEYS[2]) end
if rank < limit - inuse then
  if queued then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  end
  redis.call('ZADD', KEYS[1], ms(now + tonumber(ARGV[3])), id)
  expire(KEYS[1], KEYS[1])
  return {1, inuse + 1, 0}
end
local life = tonumber(ARGV[4])
if life <= 0 then
  if queued then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  end
  return {0, inuse, 0}
end
if not queued then
  local seq = nowus
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if #last == 2 and tonumber(last[2]) >= seq then seq = tonumber(last[2]) + 1 end
  redis.call('ZADD', KEYS[2], ms(seq), id)
end
redis.call('ZADD', KEYS[3], ms(now + life), id)
expire(KEYS[2], KEYS[3])
expire(KEYS[3], KEYS[3])
return {0, inuse, rank + 1}
`)

// renewScript extends a lease that is still there.
//
//	KEYS: leases; ARGV: [1] lease id, [2] TTL ms; reply: 1 renewed, 0 lost (the lease is gone)
//
// A member that is past its expiry but not yet trimmed may be renewed: no acquire has counted
// its slot as free, since every acquire trims first.
var renewScript = valkey.NewLuaScriptRetryable(luaNow + `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ms(now + tonumber(ARGV[2])), ARGV[1])
expire(KEYS[1], KEYS[1])
return 1
`)

// dequeueScript removes a waiter's ticket. KEYS: queue, qexp; ARGV: [1] ticket.
var dequeueScript = valkey.NewLuaScriptRetryable(`
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
`)

// countScript counts live leases by server time. KEYS: leases.
var countScript = valkey.NewLuaScriptReadOnly(luaNow + `
return redis.call('ZCOUNT', KEYS[1], '(' .. ms(now), '+inf')
`)
