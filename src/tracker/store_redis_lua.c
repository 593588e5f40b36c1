/* store_redis_lua.c — the Redis store's scripts (see store_redis_lua.h
 * for the keys). Those that begin with LUA_ONE_SLOT touch one hash slot,
 * named by their KEYS (a key they build shares its tag): Redis Cluster
 * can route them, and a cluster node refuses them if they stray. The
 * others still build key names across slots from what they read (a
 * user's bucket, a channel's members), which a cluster would refuse;
 * doc/SCALING.md lists them. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store_redis_lua.h"

#define LUA_STR(x) #x
#define LUA_NUM(x) LUA_STR(x)

/* clang-format off */
/* The flag line of a script that keeps to the slot of its KEYS: with it,
 * a cluster node checks that it does. */
#define LUA_ONE_SLOT "#!lua\n"

/* The buckets of the keys that would otherwise hold every user: a name's
 * is the first 16 bits of its SHA-1, modulo REDIS_BUCKETS (redis_bucket()
 * computes the same in C); bkey('online', 7) is 'hy:online:{7}'. */
#define LUA_BUCKETS \
	"local NB = " LUA_NUM(REDIS_BUCKETS) "\n" \
	"local function bucket(n) return tonumber(string.sub(redis.sha1hex(n), 1, 4), 16) % NB end\n" \
	"local function bkey(k, b) return 'hy:' .. k .. ':{' .. b .. '}' end\n"

/* Presence has fewer buckets (REDIS_PRESENCE_BUCKETS): a listing reads
 * every bucket its page meets. A name's is a sum of its last four bytes
 * and its length, which only the scripts compute: a SHA-1 per listed name
 * was a third of a listing's time. Chosen names can crowd one bucket; that
 * costs balance (a quarter of presence), never an answer. */
#define LUA_PBUCKET \
	"local NP = " LUA_NUM(REDIS_PRESENCE_BUCKETS) "\n" \
	"local function pbucket(n)\n" \
	"  local a, b, c, d = string.byte(n, -4, -1)\n" \
	"  return ((a or 0) * 7 + (b or 0) * 5 + (c or 0) * 3 + (d or 0) + #n) % NP\n" \
	"end\n"

/* The server's clock in milliseconds. */
#define LUA_NOW \
	"local t = redis.call('TIME')\n" \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

#define LUA_CORE LUA_BUCKETS LUA_PBUCKET LUA_NOW \
	"local function ukey(n) return 'hy:u:{' .. n .. '}' end\n" \
	"local function ckey(c) return 'hy:c:{' .. c .. '}' end\n" \
	/* Takes presence bucket b's expired peers away (up to 1000). */ \
	"local function trimb(b)\n" \
	"  local on = bkey('online', b)\n" \
	"  local gone = redis.call('ZRANGEBYSCORE', on, '-inf', now, 'LIMIT', 0, 1000)\n" \
	"  if #gone == 0 then return end\n" \
	"  redis.call('ZREM', bkey('names', b), unpack(gone))\n" \
	"  redis.call('HDEL', bkey('peer', b), unpack(gone))\n" \
	"  redis.call('ZREM', on, unpack(gone))\n" \
	"end\n" \
	/* A slice of the buckets that turns with the clock, so that readers \
	 * trim every bucket in turn; trim_all() for those that read them all. */ \
	"local function trim()\n" \
	"  local first = math.floor(now / 100)\n" \
	"  for k = 0, " LUA_NUM(REDIS_TRIM_SLICE) " - 1 do trimb((first + k) % NP) end\n" \
	"end\n" \
	"local function trim_all() for b = 0, NP - 1 do trimb(b) end end\n" \
	"local function pkey(n) return 'hy:p:{' .. n .. '}' end\n" \
	/* A profile as the details carry it: "" for none, else \
	 * "\\nDISPLAY\\nSTATUS" (neither holds a control character). */ \
	"local function ptail(d, s)\n" \
	"  if (d or '') == '' and (s or '') == '' then return '' end\n" \
	"  return '\\n' .. (d or '') .. '\\n' .. (s or '')\n" \
	"end\n"

/* LUA_CORE and the counts. */
#define LUA_PRELUDE LUA_CORE \
	"local function count(k)\n" \
	"  local n = 0\n" \
	"  if k == 'users' then\n" \
	"    for b = 0, NB - 1 do n = n + redis.call('SCARD', bkey(k, b)) end\n" \
	"  else\n" \
	"    for b = 0, NP - 1 do n = n + redis.call('ZCARD', bkey(k, b)) end\n" \
	"  end\n" \
	"  return n\n" \
	"end\n" \
	"local function online(n)\n" \
	"  local s = redis.call('ZSCORE', bkey('online', pbucket(n)), n)\n" \
	"  return s and tonumber(s) > now\n" \
	"end\n" \
	"local function mailcount(user)\n" \
	"  return tonumber(redis.call('HGET', 'hy:mc:{' .. user .. '}', 'n') or '0')\n" \
	"end\n"

/* For the scripts that join channels: join(user, c, maxuser, maxtotal)
 * is 0 if user may join channel c (not yet a member), else the cap: 1
 * the user's, 2 the total. */
#define LUA_JOIN \
	"local function join(user, c, maxuser, maxtotal)\n" \
	"  local uc = 'hy:uc:{' .. user .. '}'\n" \
	"  if redis.call('SCARD', uc) >= maxuser then return 1 end\n" \
	"  if redis.call('EXISTS', ckey(c)) == 0 and\n" \
	"     redis.call('ZCARD', 'hy:channels') >= maxtotal then return 2 end\n" \
	"  redis.call('ZADD', ckey(c), 0, user)\n" \
	"  redis.call('ZADD', 'hy:channels', 0, c)\n" \
	"  redis.call('SADD', uc, c)\n" \
	"  return 0\n" \
	"end\n"

/* KEYS: hy:u:{NAME}. ARGV: hash. 1 added, 0 taken. (The name joins its
 * bucket's hy:users:{B} by a command of its own.) */
static const char account_add[] = LUA_ONE_SLOT
	"return redis.call('HSETNX', KEYS[1], 'h', ARGV[1])\n";

/* KEYS: the token's (hy:t:{P}:ID), the user's tokens (hy:ut:{P}:NAME),
 * the bucket's sessions (hy:sessions:{P}). ARGV: name, token id, ttl ms,
 * max tokens, the prefix of the bucket's token keys (hy:t:{P}:). */
static const char token_issue[] = LUA_ONE_SLOT LUA_NOW
	"local ttl = tonumber(ARGV[3])\n"
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
	"redis.call('ZADD', KEYS[2], now + ttl, ARGV[2])\n"
	"redis.call('PEXPIRE', KEYS[2], ttl)\n"
	"redis.call('ZADD', KEYS[3], now + ttl, ARGV[2])\n"
	"while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[4]) do\n"
	"  local old = redis.call('ZPOPMIN', KEYS[2])\n"
	"  redis.call('DEL', ARGV[5] .. old[1])\n"
	"  redis.call('ZREM', KEYS[3], old[1])\n"
	"end\n"
	"return 1\n";

/* KEYS: as token_issue's, then the bucket's hy:online, hy:names and
 * hy:peer. ARGV: name, token id. 1 revoked (and its user offline), 0
 * unknown. */
static const char token_revoke[] = LUA_ONE_SLOT
	"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
	"redis.call('DEL', KEYS[1])\n"
	"redis.call('ZREM', KEYS[2], ARGV[2])\n"
	"redis.call('ZREM', KEYS[3], ARGV[2])\n"
	"redis.call('ZREM', KEYS[4], ARGV[1])\n"
	"redis.call('ZREM', KEYS[5], ARGV[1])\n"
	"redis.call('HDEL', KEYS[6], ARGV[1])\n"
	"return 1\n";

/* A registration, in steps of one slot each (store_redis_ops.c): the
 * account, the id (once in an account's life), each channel joined as
 * channel_join does, then presence. */

/* KEYS: hy:u:{NAME}, hy:p:{NAME}, hy:mc:{NAME}. ARGV: the key in base64
 * ("" none: the one kept). Returns {id (0 none yet), key, display,
 * status, messages in the mailbox}. */
static const char submit_account[] = LUA_ONE_SLOT
	"if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'pk', ARGV[1]) end\n"
	"local a = redis.call('HMGET', KEYS[1], 'id', 'pk')\n"
	"local p = redis.call('HMGET', KEYS[2], 'd', 's')\n"
	"return {tonumber(a[1] or '0'), a[2] or '', p[1] or '', p[2] or '',\n"
	"        tonumber(redis.call('HGET', KEYS[3], 'n') or '0')}\n";

/* KEYS: hy:u:{NAME}. ARGV: an id just drawn from hy:nextid. The
 * account's id: that one, unless another registration gave one first. */
static const char submit_id[] = LUA_ONE_SLOT
	"redis.call('HSETNX', KEYS[1], 'id', ARGV[1])\n"
	"return tonumber(redis.call('HGET', KEYS[1], 'id'))\n";

/* KEYS: a presence bucket's hy:online:{P}, hy:names:{P}, hy:peer:{P}.
 * ARGV: name ("" none), ttl ms, details ("IP PORT KEY OBSERVED IP6" and
 * the profile: all a listing needs of a peer). Takes the bucket's expired
 * peers away (up to 1000), lists name if given; returns how many the
 * bucket holds. */
static const char presence_put[] = LUA_ONE_SLOT LUA_NOW
	"local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)\n"
	"if #gone > 0 then\n"
	"  redis.call('ZREM', KEYS[2], unpack(gone))\n"
	"  redis.call('HDEL', KEYS[3], unpack(gone))\n"
	"  redis.call('ZREM', KEYS[1], unpack(gone))\n"
	"end\n"
	"if ARGV[1] ~= '' then\n"
	"  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
	"  redis.call('ZADD', KEYS[2], 0, ARGV[1])\n"
	"  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])\n"
	"end\n"
	"return redis.call('ZCARD', KEYS[1])\n";

/* KEYS: a presence bucket's hy:online:{P}, hy:names:{P}, hy:peer:{P},
 * hy:sessions:{P}. Trims them; returns {peers online, live tokens}. */
static const char presence_stats[] = LUA_ONE_SLOT LUA_NOW
	"local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)\n"
	"if #gone > 0 then\n"
	"  redis.call('ZREM', KEYS[2], unpack(gone))\n"
	"  redis.call('HDEL', KEYS[3], unpack(gone))\n"
	"  redis.call('ZREM', KEYS[1], unpack(gone))\n"
	"end\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)\n"
	"return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[4])}\n";

/* KEYS: the name's hy:online:{P}. ARGV: name, ttl ms. 1 renewed, 0 not
 * online. */
static const char peer_renew[] = LUA_ONE_SLOT LUA_NOW
	"local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
	"if not s or tonumber(s) <= now then return 0 end\n"
	"redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])\n"
	"return 1\n";

/* KEYS: the token's (hy:t:{P}:ID), its bucket's hy:online:{P}. ARGV:
 * the name the token carries, the name claimed (""), ttl ms. -1 no such
 * token, -2 another user's, 0 not online, {1, user} renewed. The hot
 * path: four calls and no prelude (its closures cost more than the
 * calls). */
static const char peer_beat[] = LUA_ONE_SLOT
	"local user = redis.call('GET', KEYS[1])\n"
	"if user ~= ARGV[1] then return -1 end\n"
	"if ARGV[2] ~= '' and ARGV[2] ~= user then return -2 end\n"
	LUA_NOW
	"local s = redis.call('ZSCORE', KEYS[2], user)\n"
	"if not s or tonumber(s) <= now then return 0 end\n"
	"redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[3]), user)\n"
	"return {1, user}\n";

/* ARGV: token key ("": none to check), channel ("" every peer), after
 * ("" the start), limit, all ("1": a channel's offline members too, their
 * details "! KEY" and the profile). Returns -2 for no such token, -1 for
 * no such channel, else {more, peers, the token's user}: peers one
 * string, "NAME\\x1fDETAILS" for each, separated by \\x1e (neither is
 * in a name or details), since Redis turns one string into its reply
 * much faster than two hundred.
 * Names are read LIST_CHUNK at a time, their expiries and details with one
 * ZMSCORE and one HMGET per presence bucket met (at most
 * REDIS_PRESENCE_BUCKETS of each), the profiles with the details: a page
 * of 100 costs about 40 calls, all within the script. */
static const char peer_list[] = LUA_CORE
	"local me = ''\n"
	"if ARGV[1] ~= '' then\n"
	"  me = redis.call('GET', ARGV[1])\n"
	"  if not me then return -2 end\n"
	"end\n"
	"local global = ARGV[2] == ''\n"
	"local src\n"
	"if global then trim_all() else trim() end\n"
	"local all = ARGV[5] == '1' and not global\n"
	"if not global then\n"
	"  src = ckey(ARGV[2])\n"
	"  if redis.call('EXISTS', src) == 0 then return -1 end\n"
	"end\n"
	"local limit = tonumber(ARGV[4])\n"
	"local chunk = math.min(256, limit + 1)\n"
	"local start = '-'\n"
	"if ARGV[3] ~= '' then start = '(' .. ARGV[3] end\n"
	"local out, n, more = {}, 0, 0\n"
	/* Byte order, as ZRANGEBYLEX's (Lua's < follows the locale). */
	"local function less(a, b)\n"
	"  for i = 1, math.min(#a, #b) do\n"
	"    local x, y = string.byte(a, i), string.byte(b, i)\n"
	"    if x ~= y then return x < y end\n"
	"  end\n"
	"  return #a < #b\n"
	"end\n"
	/* The next names above start, at most want: the channel's, or the \
	 * buckets' merged, up to the first name past which a bucket read in \
	 * full may hold more (partial: others may follow though fewer came). */
	"local function next_names(want)\n"
	"  if not global then\n"
	"    return redis.call('ZRANGEBYLEX', src, start, '+', 'LIMIT', 0, want), false\n"
	"  end\n"
	"  local per = math.ceil(2 * want / NP) + 1\n"
	"  local got, bound = {}, nil\n"
	"  for b = 0, NP - 1 do\n"
	"    local ns = redis.call('ZRANGEBYLEX', bkey('names', b), start, '+', 'LIMIT', 0, per)\n"
	"    for _, x in ipairs(ns) do got[#got + 1] = x end\n"
	"    if #ns == per and (not bound or less(ns[#ns], bound)) then bound = ns[#ns] end\n"
	"  end\n"
	"  table.sort(got, less)\n"
	"  local names = {}\n"
	"  for _, x in ipairs(got) do\n"
	"    if #names == want or (bound and less(bound, x)) then break end\n"
	"    names[#names + 1] = x\n"
	"  end\n"
	"  return names, bound ~= nil\n"
	"end\n"
	"while more == 0 do\n"
	"  local names, partial = next_names(chunk)\n"
	"  if #names == 0 then break end\n"
	/* Expiries and details: one ZMSCORE and one HMGET per bucket met. */
	"  local exp, det, byb = {}, {}, {}\n"
	"  for i, x in ipairs(names) do\n"
	"    local b = pbucket(x)\n"
	"    if not byb[b] then byb[b] = {} end\n"
	"    byb[b][#byb[b] + 1] = i\n"
	"  end\n"
	"  for b, idx in pairs(byb) do\n"
	"    local ns = {}\n"
	"    for j, i in ipairs(idx) do ns[j] = names[i] end\n"
	"    local e = redis.call('ZMSCORE', bkey('online', b), unpack(ns))\n"
	"    local d = redis.call('HMGET', bkey('peer', b), unpack(ns))\n"
	"    for j, i in ipairs(idx) do exp[i], det[i] = e[j], d[j] end\n"
	"  end\n"
	"  for i, name in ipairs(names) do\n"
	"    if exp[i] and tonumber(exp[i]) > now and det[i] then\n"
	"      if n == limit then more = 1 break end\n"
	"      n = n + 1\n"
	"      out[#out + 1] = name .. '\\31' .. det[i]\n"
	"    elseif all then\n"
	"      if n == limit then more = 1 break end\n"
	"      n = n + 1\n"
	"      local p = redis.call('HMGET', pkey(name), 'd', 's')\n"
	"      out[#out + 1] = name .. '\\31! ' .. (redis.call('HGET', ukey(name), 'pk') or '') ..\n"
	"          ptail(p[1], p[2])\n"
	"    end\n"
	"  end\n"
	"  if #names < chunk and not partial then break end\n"
	"  start = '(' .. names[#names]\n"
	"  chunk = 256\n"
	"end\n"
	"return {more, table.concat(out, '\\30'), me}\n";

/* KEYS: the name's hy:online:{P}, hy:peer:{P}. ARGV: name. {1, details}
 * if online, else {0, ""}. */
static const char peer_state[] = LUA_ONE_SLOT LUA_NOW
	"local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
	"if not s or tonumber(s) <= now then return {0, ''} end\n"
	"return {1, redis.call('HGET', KEYS[2], ARGV[1]) or ''}\n";

/* KEYS: hy:p:{NAME}. ARGV: display, status, each prefixed with "=" (set
 * to the rest) or "-" (keep). Both "" deletes the profile. Returns
 * {display, status}, which profile_copy then puts in the details. */
static const char profile_set[] = LUA_ONE_SLOT
	"local p = redis.call('HMGET', KEYS[1], 'd', 's')\n"
	"local d, s = p[1] or '', p[2] or ''\n"
	"if string.sub(ARGV[1], 1, 1) == '=' then d = string.sub(ARGV[1], 2) end\n"
	"if string.sub(ARGV[2], 1, 1) == '=' then s = string.sub(ARGV[2], 2) end\n"
	"if d == '' and s == '' then\n"
	"  redis.call('DEL', KEYS[1])\n"
	"else\n"
	"  redis.call('HSET', KEYS[1], 'd', d, 's', s)\n"
	"end\n"
	"return {d, s}\n";

/* KEYS: the name's hy:peer:{P}. ARGV: name, display, status. The details
 * of an online peer carry its profile, for listings; 1 if it is online.
 * A second call: the details may lag the profile by a round trip. */
static const char profile_copy[] = LUA_ONE_SLOT
	"local det = redis.call('HGET', KEYS[1], ARGV[1])\n"
	"if not det then return 0 end\n"
	"local nl = string.find(det, '\\n', 1, true)\n"
	"if nl then det = string.sub(det, 1, nl - 1) end\n"
	"if ARGV[2] ~= '' or ARGV[3] ~= '' then\n"
	"  det = det .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[3]\n"
	"end\n"
	"redis.call('HSET', KEYS[1], ARGV[1], det)\n"
	"return 1\n";

/* Joining a channel, in three calls (store_redis_ops.c): the user's side
 * with its cap, then the channel's, then the list of every channel with
 * the total's cap (undone if that refuses). The channel's side comes
 * before the list so that a leave emptying the channel meanwhile, which
 * takes it off the list, finds it not empty again and puts it back. */

/* KEYS: hy:uc:{NAME}. ARGV: channel, max user channels. 2 a member
 * already, 1 added, -1 at the cap. */
static const char join_user[] = LUA_ONE_SLOT
	"if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 2 end\n"
	"if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end\n"
	"redis.call('SADD', KEYS[1], ARGV[1])\n"
	"return 1\n";

/* KEYS: hy:c:{CHANNEL}. ARGV: name, limit. {members, {the first limit
 * names}}. */
static const char join_channel[] = LUA_ONE_SLOT
	"redis.call('ZADD', KEYS[1], 0, ARGV[1])\n"
	"local l, names = tonumber(ARGV[2]), {}\n"
	"if l > 0 then names = redis.call('ZRANGE', KEYS[1], 0, l - 1) end\n"
	"return {redis.call('ZCARD', KEYS[1]), names}\n";

/* KEYS: hy:channels. ARGV: channel, max channels. 1 listed, -2 a new
 * channel past the cap. */
static const char join_list[] = LUA_ONE_SLOT
	"if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end\n"
	"if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -2 end\n"
	"redis.call('ZADD', KEYS[1], 0, ARGV[1])\n"
	"return 1\n";

/* KEYS: hy:c:{CHANNEL}. ARGV: name. -1 not a member, else the members
 * left (0: the channel is gone, and leaves the list next). */
static const char leave_channel[] = LUA_ONE_SLOT
	"if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
	"return redis.call('ZCARD', KEYS[1])\n";

/* KEYS: the sender's hy:rdv:{SENDER}. ARGV: burst, per second. 1 spent
 * one, -1 the sender's rendezvous budget is spent. The budget is the time
 * (Redis's clock, ms) at which it would be full again (a GCRA): one
 * number for every tracker. */
static const char hint_budget[] = LUA_ONE_SLOT LUA_NOW
	"local step = math.floor(1000 / tonumber(ARGV[2]))\n"
	"local full = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)\n"
	"if full + step > now + tonumber(ARGV[1]) * step then return -1 end\n"
	"redis.call('SET', KEYS[1], full + step, 'PX', full + step - now + 1000)\n"
	"return 1\n";

/* KEYS: the user's hy:h:{USER} (list: "EXPIRY HINT", oldest first),
 * which expires with its last. ARGV: hint, ttl ms, max hints. Once
 * hint_budget passed it. */
static const char hint_add[] = LUA_ONE_SLOT LUA_NOW
	"local ttl = tonumber(ARGV[2])\n"
	"redis.call('RPUSH', KEYS[1], (now + ttl) .. ' ' .. ARGV[1])\n"
	"redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)\n"
	"redis.call('PEXPIRE', KEYS[1], ttl)\n"
	"return 1\n";

/* KEYS: the user's hy:h:{USER}. Its hints not yet expired, oldest first;
 * taken. */
static const char hint_take[] = LUA_ONE_SLOT LUA_NOW
	"local all = redis.call('LRANGE', KEYS[1], 0, -1)\n"
	"if #all == 0 then return {} end\n"
	"redis.call('DEL', KEYS[1])\n"
	"local out = {}\n"
	"for _, h in ipairs(all) do\n"
	"  local sp = string.find(h, ' ', 1, true)\n"
	"  if sp and tonumber(string.sub(h, 1, sp - 1)) > now then\n"
	"    out[#out + 1] = string.sub(h, sp + 1)\n"
	"  end\n"
	"end\n"
	"return out\n";

/* The mailbox's helpers: del(name, id) deletes one message and returns
 * its blob's size (nil if there was none); expire(before, b) deletes up
 * to 1000 messages of bucket b deposited before that wall-clock ms,
 * expire_all(before) up to 1000 of every bucket. */
#define LUA_MAIL LUA_BUCKETS \
	"local function mkey(k, n) return 'hy:' .. k .. ':{' .. n .. '}' end\n" \
	"local function del(n, id)\n" \
	"  local v = redis.call('HGET', mkey('mb', n), id)\n" \
	"  redis.call('ZREM', bkey('mail', bucket(n)), n .. ' ' .. id)\n" \
	"  if not v then return nil end\n" \
	"  local len = string.len(v) - string.find(v, ' ', 1, true)\n" \
	"  redis.call('HDEL', mkey('mb', n), id)\n" \
	"  redis.call('ZREM', mkey('mq', n), id)\n" \
	"  redis.call('HINCRBY', mkey('mc', n), 'n', -1)\n" \
	"  redis.call('HINCRBY', mkey('mc', n), 'b', -len)\n" \
	"  return len\n" \
	"end\n" \
	"local function expire(before, b, most)\n" \
	"  local count = 0\n" \
	"  local old = redis.call('ZRANGEBYSCORE', bkey('mail', b), '-inf', '(' .. before,\n" \
	"      'LIMIT', 0, most or 1000)\n" \
	"  for _, m in ipairs(old) do\n" \
	"    local sp = string.find(m, ' ', 1, true)\n" \
	"    if del(string.sub(m, 1, sp - 1), string.sub(m, sp + 1)) then count = count + 1 end\n" \
	"  end\n" \
	"  return count\n" \
	"end\n" \
	"local function expire_all(before)\n" \
	"  local count = 0\n" \
	"  for b = 0, NB - 1 do\n" \
	"    if count < 1000 then count = count + expire(before, b, 1000 - count) end\n" \
	"  end\n" \
	"  return count\n" \
	"end\n"

/* ARGV: name, blob, time ms, max messages, max bytes, expire before ms,
 * sender, rate (deposits a minute, 0 no limit). The new id, -1 past the
 * quota, or -(1 + seconds to wait) when the sender's bucket is empty.
 * The bucket, hy:rl:{SENDER} (hash: m thousandths of a deposit, at its
 * time in ms on Redis's clock), holds up to rate deposits and gains rate
 * a minute; it is taken from only when the deposit is stored, and expires
 * once it would be full again. */
static const char mail_add[] = LUA_MAIL
	"local n = ARGV[1]\n"
	"local rate = tonumber(ARGV[8])\n"
	"local rk, tokens, now = 'hy:rl:{' .. ARGV[7] .. '}', 0, 0\n"
	"if rate > 0 then\n"
	"  local t = redis.call('TIME')\n"
	"  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"  local b = redis.call('HMGET', rk, 'm', 'at')\n"
	"  tokens = rate * 1000\n"
	"  if b[1] then\n"
	"    tokens = math.min(rate * 1000,\n"
	"        tonumber(b[1]) + math.floor((now - tonumber(b[2])) * rate / 60))\n"
	"  end\n"
	"  if tokens < 1000 then\n"
	"    return -1 - math.max(1, math.ceil((1000 - tokens) * 60 / rate / 1000))\n"
	"  end\n"
	"end\n"
	"expire(ARGV[6], bucket(n))\n"
	"local c = redis.call('HMGET', mkey('mc', n), 'n', 'b')\n"
	"local len = string.len(ARGV[2])\n"
	"if tonumber(c[1] or '0') + 1 > tonumber(ARGV[4]) or\n"
	"   tonumber(c[2] or '0') + len > tonumber(ARGV[5]) then return -1 end\n"
	"if rate > 0 then\n"
	"  redis.call('HSET', rk, 'm', tokens - 1000, 'at', now)\n"
	"  redis.call('PEXPIRE', rk, math.ceil(60000 * (rate * 1000 - tokens + 1000) / (rate * 1000)) + 1000)\n"
	"end\n"
	"local id = redis.call('INCR', mkey('mid', n))\n"
	"redis.call('HSET', mkey('mb', n), id, ARGV[3] .. ' ' .. ARGV[2])\n"
	"redis.call('ZADD', mkey('mq', n), id, id)\n"
	"redis.call('HINCRBY', mkey('mc', n), 'n', 1)\n"
	"redis.call('HINCRBY', mkey('mc', n), 'b', len)\n"
	"redis.call('ZADD', bkey('mail', bucket(n)), ARGV[3], n .. ' ' .. id)\n"
	"return id\n";

/* ARGV: name, after id, limit, max bytes, expire before ms. Returns
 * {more, id, "TIME BLOB", id, "TIME BLOB", ...} in id order. */
static const char mail_list[] = LUA_MAIL
	"local n, limit = ARGV[1], tonumber(ARGV[3])\n"
	"expire(ARGV[5], bucket(n))\n"
	"local ids = redis.call('ZRANGEBYSCORE', mkey('mq', n), '(' .. ARGV[2], '+inf',\n"
	"    'LIMIT', 0, limit + 1)\n"
	"local out, got, bytes = {0}, 0, 0\n"
	"for _, id in ipairs(ids) do\n"
	"  local v = redis.call('HGET', mkey('mb', n), id)\n"
	"  if v then\n"
	"    local len = string.len(v) - string.find(v, ' ', 1, true)\n"
	"    if got == limit or (got > 0 and bytes + len > tonumber(ARGV[4])) then\n"
	"      out[1] = 1\n"
	"      break\n"
	"    end\n"
	"    got, bytes = got + 1, bytes + len\n"
	"    out[#out + 1] = id\n"
	"    out[#out + 1] = v\n"
	"  end\n"
	"end\n"
	"return out\n";

/* ARGV: name, ids separated by commas. How many were the name's. */
static const char mail_delete[] = LUA_MAIL
	"local count = 0\n"
	"for id in string.gmatch(ARGV[2], '%d+') do\n"
	"  if del(ARGV[1], id) then count = count + 1 end\n"
	"end\n"
	"return count\n";

/* ARGV: before ms. How many expired messages went (at most 1000). */
static const char mail_expire[] = LUA_MAIL
	"return expire_all(ARGV[1])\n";
/* clang-format on */

static const char *const bodies[REDIS_SCRIPT_COUNT] = {
	[REDIS_ACCOUNT_ADD] = account_add,
	[REDIS_TOKEN_ISSUE] = token_issue,
	[REDIS_TOKEN_REVOKE] = token_revoke,
	[REDIS_SUBMIT_ACCOUNT] = submit_account,
	[REDIS_SUBMIT_ID] = submit_id,
	[REDIS_PRESENCE_PUT] = presence_put,
	[REDIS_PRESENCE_STATS] = presence_stats,
	[REDIS_PEER_RENEW] = peer_renew,
	[REDIS_PEER_BEAT] = peer_beat,
	[REDIS_PEER_LIST] = peer_list,
	[REDIS_PEER_STATE] = peer_state,
	[REDIS_JOIN_USER] = join_user,
	[REDIS_JOIN_CHANNEL] = join_channel,
	[REDIS_JOIN_LIST] = join_list,
	[REDIS_LEAVE_CHANNEL] = leave_channel,
	[REDIS_MAIL_ADD] = mail_add,
	[REDIS_MAIL_LIST] = mail_list,
	[REDIS_MAIL_DELETE] = mail_delete,
	[REDIS_MAIL_EXPIRE] = mail_expire,
	[REDIS_PROFILE_SET] = profile_set,
	[REDIS_PROFILE_COPY] = profile_copy,
	[REDIS_HINT_BUDGET] = hint_budget,
	[REDIS_HINT_ADD] = hint_add,
	[REDIS_HINT_TAKE] = hint_take,
};

static char shas[REDIS_SCRIPT_COUNT][REDIS_SHA_TEXT];
static pthread_once_t shas_once = PTHREAD_ONCE_INIT;

static void
shas_init(void)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < REDIS_SCRIPT_COUNT; i++) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned len = 0;
		if (EVP_Digest(bodies[i], strlen(bodies[i]), md, &len, EVP_sha1(), NULL) != 1)
			len = 0; /* then EVALSHA fails with NOSCRIPT and EVAL is used */
		for (unsigned j = 0; j < len && 2 * j + 2 < REDIS_SHA_TEXT; j++) {
			shas[i][2 * j] = hex[md[j] >> 4];
			shas[i][2 * j + 1] = hex[md[j] & 15];
		}
	}
}

unsigned
redis_pbucket(const char *name)
{
	static const unsigned weight[] = { 7, 5, 3, 1 };
	size_t len = strlen(name), from = len > 4 ? len - 4 : 0;
	unsigned sum = (unsigned)len;

	for (size_t i = from; i < len; i++)
		sum += weight[i - from] * (unsigned char)name[i];
	return sum % REDIS_PRESENCE_BUCKETS;
}

unsigned
redis_bucket(const char *name)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (EVP_Digest(name, strlen(name), md, &len, EVP_sha1(), NULL) != 1 || len < 2)
		return 0;
	return ((unsigned)md[0] << 8 | md[1]) % REDIS_BUCKETS;
}

const char *
redis_script_body(enum redis_script s)
{
	return bodies[s];
}

const char *
redis_script_sha(enum redis_script s)
{
	pthread_once(&shas_once, shas_init);
	return shas[s];
}
