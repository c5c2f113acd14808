package lease

import "github.com/valkey-io/valkey-go"

// Keys of one user (all share the {user} hash tag, so one script may touch them in a cluster):
//
//	<prefix>:{<user>}:leases  sorted set: member = lease id, score = expiry (ms, Valkey server time)
//	<prefix>:{<user>}:queue   sorted set: member = waiter ticket, score = arrival (us, server time)
//	<prefix>:{<user>}:qexp    sorted set: member = waiter ticket, score = ticket expiry (ms)
//
// Every script that writes a key keeps it alive for at least as long as the latest score in it
// (touch), refreshing the TTL in one-second steps; so a key outlives its last live member by at
// most a second or two and nothing grows forever.
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

// luaPrelude is shared by the scripts below: now is the server's time in milliseconds, nowus in
// microseconds; touch(k, ms) makes k live at least ms longer (never shortening it, so nodes with
// different TTLs cannot cut each other's leases short); ms formats a score without exponent.
const luaPrelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function touch(k, ms)
  if redis.call('PTTL', k) < ms then redis.call('PEXPIRE', k, ms + 1000) end
end
local function ms(x) return string.format('%.0f', x) end
`

// sentinel is the member a Valkey that started less than a recovery window ago adds to a user's
// lease set (score: the window's end). Valkey keeps nothing on disk, so a restart loses every
// lease while their streams may still run for up to one TTL (see Lease): until the window ends
// only re-establishments of such leases are admitted, and new streams wait.
const sentinel = "~recovering"

// acquireScript admits the caller if fewer waiters stand ahead of it than there are free slots;
// otherwise it queues the caller (FIFO by server arrival time) when ARGV[4] > 0. Expired leases
// are trimmed only when the count without trimming would refuse (a live set never holds more
// than limit members, expired ones included), and tickets whose lifetime ran out (their waiter
// stopped looking) only when the queue is not empty: the common case costs six commands.
//
// With ARGV[6] = 1 the call re-establishes a lease this node still runs a stream under (it
// lapsed, or Valkey lost its data): it is admitted if the count allows, ahead of every waiter
// and through a recovery window, or refused; never queued.
//
// When the user's set is empty the script asks Valkey's uptime: a server that started less
// than ARGV[5] ms ago adds the recovery sentinel (see sentinel), so that new streams wait
// until every lease from before the restart has either been re-established or stopped.
//
//	KEYS: leases, queue, qexp
//	ARGV: [1] lease id, also the waiter's ticket; [2] limit; [3] lease TTL ms;
//	      [4] ticket lifetime ms (0: do not queue); [5] recovery window ms; [6] 1: re-establish
//	reply: {admitted 0|1, leases in use (with this one when admitted; untrimmed expired ones
//	        may be included then), queue position (1 = head; 0 = not queued),
//	        ms left of a recovery window that kept the caller out (0: none)}
//
// It is not retryable: a retry after a lost reply could add a second lease.
var acquireScript = valkey.NewLuaScript(luaPrelude + `
local id = ARGV[1]
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local life = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local keep = ARGV[6] == '1'
local inuse = redis.call('ZCARD', KEYS[1])
if inuse == 0 then
  local up = tonumber(string.match(redis.call('INFO', 'server'), 'uptime_in_seconds:(%d+)'))
  if up and up * 1000 < window then
    local ends = now - up * 1000 + window
    redis.call('ZADD', KEYS[1], ms(ends), '` + sentinel + `')
    touch(KEYS[1], ends - now)
    inuse = 1
  end
end
local hold = 0
if inuse > 0 then
  local s = redis.call('ZSCORE', KEYS[1], '` + sentinel + `')
  if s then
    if tonumber(s) > now then hold = tonumber(s) - now else redis.call('ZREM', KEYS[1], '` + sentinel + `') end
    inuse = inuse - 1
  end
end
local function trim()
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  local n = redis.call('ZCARD', KEYS[1])
  if hold > 0 then n = n - 1 end
  return n
end
if keep then
  if redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], 'XX', ms(now + ttl), id)
    touch(KEYS[1], ttl)
    return {1, inuse, 0, 0}
  end
  if inuse >= limit then inuse = trim() end
  if inuse < limit then
    redis.call('ZADD', KEYS[1], ms(now + ttl), id)
    touch(KEYS[1], ttl)
    return {1, inuse + 1, 0, 0}
  end
  return {0, inuse, 0, 0}
end
local qlen = redis.call('ZCARD', KEYS[2])
local rank = false
if qlen > 0 then
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  if #lapsed > 0 then
    for i = 1, #lapsed do redis.call('ZREM', KEYS[2], lapsed[i]) end
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    qlen = redis.call('ZCARD', KEYS[2])
  end
  rank = redis.call('ZRANK', KEYS[2], id)
end
local queued = rank ~= false
if not queued then rank = qlen end
if hold == 0 and rank >= limit - inuse then inuse = trim() end
if hold == 0 and rank < limit - inuse then
  if queued then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  end
  redis.call('ZADD', KEYS[1], ms(now + ttl), id)
  touch(KEYS[1], ttl)
  return {1, inuse + 1, 0, 0}
end
if life <= 0 then
  if queued then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  end
  return {0, inuse, 0, hold}
end
if not queued then
  local seq = nowus
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if #last == 2 and tonumber(last[2]) >= seq then seq = tonumber(last[2]) + 1 end
  redis.call('ZADD', KEYS[2], ms(seq), id)
end
redis.call('ZADD', KEYS[3], ms(now + life), id)
touch(KEYS[2], life)
touch(KEYS[3], life)
return {0, inuse, rank + 1, hold}
`)

// renewScript extends a lease that is still there.
//
//	KEYS: leases; ARGV: [1] lease id, [2] TTL ms; reply: 1 renewed, 0 lost (the lease is gone)
//
// A member that is past its expiry but not yet trimmed may be renewed: no acquire has counted
// its slot as free, since an acquire trims before it counts a slot of an expired lease as free.
var renewScript = valkey.NewLuaScriptRetryable(luaPrelude + `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ms(now + tonumber(ARGV[2])), ARGV[1])
touch(KEYS[1], tonumber(ARGV[2]))
return 1
`)

// dequeueScript removes a waiter's ticket. KEYS: queue, qexp; ARGV: [1] ticket.
var dequeueScript = valkey.NewLuaScriptRetryable(`
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
`)

// countScript counts live leases by server time, the recovery sentinel aside. KEYS: leases.
var countScript = valkey.NewLuaScriptReadOnly(luaPrelude + `
local n = redis.call('ZCOUNT', KEYS[1], '(' .. ms(now), '+inf')
local s = redis.call('ZSCORE', KEYS[1], '` + sentinel + `')
if s and tonumber(s) > now then n = n - 1 end
return n
`)
