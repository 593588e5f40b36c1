/* store_redis_lua.c — the Redis store's scripts (see store_redis_lua.h
 * for the keys). Each touches one hash slot, named by its KEYS (the one
 * key it builds, a token's in token_issue, shares their tag), so that
 * Redis Cluster can route it; each begins with LUA_ONE_SLOT, so that a
 * cluster node refuses it if it strays. An operation that spans slots
 * is several calls, made by store_redis_ops.c. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store_redis_lua.h"

/* clang-format off */
/* The flag line of a script that keeps to the slot of its KEYS: with it,
 * a cluster node checks that it does. */
#define LUA_ONE_SLOT "#!lua\n"

/* The server's clock in milliseconds. */
#define LUA_NOW \
	"local t = redis.call('TIME')\n" \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* With KEYS[1..3] a presence bucket's hy:online, hy:names and hy:peer:
 * takes its expired peers away (up to 1000), after LUA_NOW. */
#define LUA_TRIM \
	"local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)\n" \
	"if #gone > 0 then\n" \
	"  redis.call('ZREM', KEYS[2], unpack(gone))\n" \
	"  redis.call('HDEL', KEYS[3], unpack(gone))\n" \
	"  redis.call('ZREM', KEYS[1], unpack(gone))\n" \
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
static const char presence_put[] = LUA_ONE_SLOT LUA_NOW LUA_TRIM
	"if ARGV[1] ~= '' then\n"
	"  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
	"  redis.call('ZADD', KEYS[2], 0, ARGV[1])\n"
	"  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])\n"
	"end\n"
	"return redis.call('ZCARD', KEYS[1])\n";

/* KEYS: a presence bucket's hy:online:{P}, hy:names:{P}, hy:peer:{P},
 * hy:sessions:{P}. Trims them; returns {peers online, live tokens}. */
static const char presence_stats[] = LUA_ONE_SLOT LUA_NOW LUA_TRIM
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

/* KEYS: a presence bucket's hy:online:{P}, hy:peer:{P}. ARGV: names.
 * For each, in order, its details if online, else "". */
static const char list_states[] = LUA_ONE_SLOT LUA_NOW
	"local e = redis.call('ZMSCORE', KEYS[1], unpack(ARGV))\n"
	"local d = redis.call('HMGET', KEYS[2], unpack(ARGV))\n"
	"local out = {}\n"
	"for i = 1, #ARGV do\n"
	"  if e[i] and tonumber(e[i]) > now and d[i] then out[i] = d[i] else out[i] = '' end\n"
	"end\n"
	"return out\n";

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

/* The mailbox, in the recipient's slot: KEYS[1] hy:mb:{NAME}, KEYS[2]
 * hy:mq:{NAME}, KEYS[3] hy:mc:{NAME}. del(id) deletes one message and
 * returns its blob's size (nil if there was none); expire(before)
 * deletes the oldest messages deposited before that wall-clock ms (up to
 * 100: ids grow with time, so it stops at the first younger one). The
 * bucket index hy:mail:{B}, another slot, is the tracker's: a message
 * deleted here leaves its entry for the sweep to drop. */
#define LUA_MAILBOX \
	"local function del(id)\n" \
	"  local v = redis.call('HGET', KEYS[1], id)\n" \
	"  redis.call('ZREM', KEYS[2], id)\n" \
	"  if not v then return nil end\n" \
	"  local len = string.len(v) - string.find(v, ' ', 1, true)\n" \
	"  redis.call('HDEL', KEYS[1], id)\n" \
	"  redis.call('HINCRBY', KEYS[3], 'n', -1)\n" \
	"  redis.call('HINCRBY', KEYS[3], 'b', -len)\n" \
	"  return len\n" \
	"end\n" \
	"local function expire(before)\n" \
	"  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, 99)) do\n" \
	"    local v = redis.call('HGET', KEYS[1], id)\n" \
	"    if v and tonumber(string.sub(v, 1, string.find(v, ' ', 1, true) - 1)) >= before then\n" \
	"      return\n" \
	"    end\n" \
	"    del(id)\n" \
	"  end\n" \
	"end\n"

/* KEYS: the sender's hy:rl:{SENDER} (hash: m thousandths of a deposit,
 * at its time in ms on Redis's clock). ARGV: rate (deposits a minute).
 * The bucket holds up to rate deposits and gains rate a minute; 1 took
 * one, -(1 + seconds to wait) when it is empty. It expires once it would
 * be full again. */
static const char mail_rate[] = LUA_ONE_SLOT LUA_NOW
	"local rate = tonumber(ARGV[1])\n"
	"local b = redis.call('HMGET', KEYS[1], 'm', 'at')\n"
	"local tokens = rate * 1000\n"
	"if b[1] then\n"
	"  tokens = math.min(rate * 1000,\n"
	"      tonumber(b[1]) + math.floor((now - tonumber(b[2])) * rate / 60))\n"
	"end\n"
	"if tokens < 1000 then\n"
	"  return -1 - math.max(1, math.ceil((1000 - tokens) * 60 / rate / 1000))\n"
	"end\n"
	"redis.call('HSET', KEYS[1], 'm', tokens - 1000, 'at', now)\n"
	"redis.call('PEXPIRE', KEYS[1], math.ceil(60000 * (rate * 1000 - tokens + 1000) / (rate * 1000)) + 1000)\n"
	"return 1\n";

/* KEYS: as mail_rate's. A deposit taken and then refused by the quota,
 * given back. */
static const char mail_refund[] = LUA_ONE_SLOT
	"if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'm', 1000) end\n"
	"return 1\n";

/* KEYS: the mailbox's three, then hy:mid:{NAME} (the last id given, kept
 * so that ids only grow). ARGV: blob, time ms, max messages, max bytes,
 * expire before ms. The new id, or -1 past the quota. */
static const char mail_add[] = LUA_ONE_SLOT LUA_MAILBOX
	"expire(tonumber(ARGV[5]))\n"
	"local c = redis.call('HMGET', KEYS[3], 'n', 'b')\n"
	"local len = string.len(ARGV[1])\n"
	"if tonumber(c[1] or '0') + 1 > tonumber(ARGV[3]) or\n"
	"   tonumber(c[2] or '0') + len > tonumber(ARGV[4]) then return -1 end\n"
	"local id = redis.call('INCR', KEYS[4])\n"
	"redis.call('HSET', KEYS[1], id, ARGV[2] .. ' ' .. ARGV[1])\n"
	"redis.call('ZADD', KEYS[2], id, id)\n"
	"redis.call('HINCRBY', KEYS[3], 'n', 1)\n"
	"redis.call('HINCRBY', KEYS[3], 'b', len)\n"
	"return id\n";

/* KEYS: the mailbox's three. ARGV: after id, limit, max bytes, expire
 * before ms. Returns {more, id, "TIME BLOB", id, "TIME BLOB", ...} in id
 * order. */
static const char mail_list[] = LUA_ONE_SLOT LUA_MAILBOX
	"local limit = tonumber(ARGV[2])\n"
	"expire(tonumber(ARGV[4]))\n"
	"local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf',\n"
	"    'LIMIT', 0, limit + 1)\n"
	"local out, got, bytes = {0}, 0, 0\n"
	"for _, id in ipairs(ids) do\n"
	"  local v = redis.call('HGET', KEYS[1], id)\n"
	"  if v then\n"
	"    local len = string.len(v) - string.find(v, ' ', 1, true)\n"
	"    if got == limit or (got > 0 and bytes + len > tonumber(ARGV[3])) then\n"
	"      out[1] = 1\n"
	"      break\n"
	"    end\n"
	"    got, bytes = got + 1, bytes + len\n"
	"    out[#out + 1] = id\n"
	"    out[#out + 1] = v\n"
	"  end\n"
	"end\n"
	"return out\n";

/* KEYS: the mailbox's three. ARGV: ids separated by commas. The ids that
 * were the name's, deleted. */
static const char mail_delete[] = LUA_ONE_SLOT LUA_MAILBOX
	"local gone = {}\n"
	"for id in string.gmatch(ARGV[1], '%d+') do\n"
	"  if del(id) then gone[#gone + 1] = id end\n"
	"end\n"
	"return gone\n";
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
	[REDIS_LIST_STATES] = list_states,
	[REDIS_PEER_STATE] = peer_state,
	[REDIS_JOIN_USER] = join_user,
	[REDIS_JOIN_CHANNEL] = join_channel,
	[REDIS_JOIN_LIST] = join_list,
	[REDIS_LEAVE_CHANNEL] = leave_channel,
	[REDIS_MAIL_RATE] = mail_rate,
	[REDIS_MAIL_REFUND] = mail_refund,
	[REDIS_MAIL_ADD] = mail_add,
	[REDIS_MAIL_LIST] = mail_list,
	[REDIS_MAIL_DELETE] = mail_delete,
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
