package conns

import (
	"crypto/sha1"
	"encoding/hex"

	"github.com/valkey-io/valkey-go"
)

// The one key of a user (so a user's keys share the {user} hash tag with the lease package's):
//
//	<prefix>:{<user>}:conns  hash: field = node id, value = "<count> <expiry ms>"
//
// A node's share counts until its expiry, in the node's clock (Config.Clock, Unix ms): the
// node refreshes it every TTL/3, so nodes whose clocks differ by less than 2/3 of the TTL never
// drop each other's live shares. Valkey 8.0 has no per-field TTL, so the scripts drop expired
// fields as they read them, and every write keeps the key alive for two TTLs: a key no node
// refreshes goes away by itself.
const suffixConns = "conns"

// key builds every key this package uses.
func key(prefix, user string) string {
	return prefix + ":{" + user + "}:" + suffixConns
}

// luaPrelude is shared by the scripts below: now and ttl (ms) come from ARGV[2] and ARGV[3];
// share(v) parses a field's value into count and expiry; put(node, n) writes a node's share
// (deleting it at 0) and keeps the key alive.
const luaPrelude = `
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local function share(v)
  local n, exp = string.match(v, '^(%d+) (%d+)$')
  return tonumber(n), tonumber(exp)
end
local function put(node, n)
  if n <= 0 then
    redis.call('HDEL', KEYS[1], node)
  else
    redis.call('HSET', KEYS[1], node, string.format('%d %.0f', n, now + ttl))
    redis.call('PEXPIRE', KEYS[1], 2 * ttl)
  end
end
`

// acquireScript counts the live shares of every node, dropping expired ones, and adds one
// connection to this node's share if the total is under the limit.
//
//	KEYS: conns; ARGV: [1] node id, [2] now ms, [3] TTL ms, [4] limit
//	reply: {admitted 0|1, connections open across nodes (with this one when admitted)}
//
// It is not retryable: a retry after a lost reply could count the connection twice (the next
// refresh would correct it).
var acquireScript = valkey.NewLuaScript(luaPrelude + `
local limit = tonumber(ARGV[4])
local all = redis.call('HGETALL', KEYS[1])
local open, mine = 0, 0
for i = 1, #all, 2 do
  local n, exp = share(all[i + 1])
  if not n or exp <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    open = open + n
    if all[i] == ARGV[1] then mine = n end
  end
end
if open >= limit then return {0, open} end
put(ARGV[1], mine + 1)
return {1, open + 1}
`)

// releaseScript takes one connection off this node's share.
//
//	KEYS: conns; ARGV: [1] node id, [2] now ms, [3] TTL ms; reply: the share left
//
// Not retryable either: a retry could take two off (the next refresh would correct it).
var releaseScript = valkey.NewLuaScript(luaPrelude + `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local n = share(v)
n = (n or 1) - 1
put(ARGV[1], n)
return math.max(n, 0)
`)

// refreshScript sets this node's share to the count the node holds and renews its expiry.
//
//	KEYS: conns; ARGV: [1] node id, [2] now ms, [3] TTL ms, [4] count; reply: 1
var refreshScript = valkey.NewLuaScriptRetryable(refreshSource)

const refreshSource = luaPrelude + `
put(ARGV[1], tonumber(ARGV[4]))
return 1
`

// refreshSHA is refreshScript's SHA-1, for the refresh's pipelined EVALSHA calls.
var refreshSHA = func() string {
	sum := sha1.Sum([]byte(refreshSource))
	return hex.EncodeToString(sum[:])
}()

// countScript counts the live shares of every node. KEYS: conns; ARGV: [1] unused, [2] now ms.
var countScript = valkey.NewLuaScriptReadOnly(luaPrelude + `
local open = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local n, exp = share(all[i + 1])
  if n and exp > now then open = open + n end
end
return open
`)
