/* store_redis_lua.h — the Lua scripts behind the Redis store
 * (store_redis_lua.c): one per step that reads or writes more than one
 * key of one slot, so that each runs atomically on the server. Not an
 * interface outside src/tracker.
 *
 * Keys: hy:u:{NAME} (hash: h the password hash, pk the key in base64, id
 * the peer id), hy:users:{B} (set of names), hy:t:{P}:ID (string: the
 * user of a token, ID a hash of the token, expiring with it; P the user's
 * presence bucket, which the token's text names), hy:ut:{P}:NAME (zset:
 * the user's token ids by expiry), hy:sessions:{P} (zset: the token ids of
 * bucket P's users by expiry), hy:online:{P} (zset: online names scored
 * by expiry in ms, Redis's clock), hy:names:{P} (zset: the same names in
 * lexical order), hy:peer:{P} (hash: name -> "IP PORT KEY OBSERVED IP6",
 * then "\nDISPLAY\nSTATUS" with a profile), hy:c:{CHANNEL} (zset: members
 * in lexical order), hy:channels (zset: channel names), hy:uc:{NAME} (set:
 * the user's channels), hy:nextid (counter), hy:h:{NAME} (list: NAT
 * hints waiting, "EXPIRY HINT"), hy:rdv:{NAME} (string: the rendezvous
 * budget). Readers trim expired peers (score <= now) from hy:online:{P},
 * hy:names:{P} and hy:peer:{P}, so presence needs no particular tracker
 * alive: a registration and /stats trim every bucket, a listing of every
 * peer too, a channel's listing one that turns with the clock.
 *
 * B is a user's bucket, redis_bucket(): what would otherwise be one key
 * for every user (the user set, the mailbox's expiry index) is split
 * into REDIS_BUCKETS keys, each in its own Redis Cluster slot. P is its
 * presence bucket, one of REDIS_PRESENCE_BUCKETS (redis_pbucket()):
 * fewer, since a listing reads each one its page meets. A key's tag is
 * the part in braces: one call's keys share it (store_redis_lua.c).
 *
 * The mailbox: hy:mb:{NAME} (hash: message id -> "TIME BLOB", TIME the
 * deposit's wall-clock ms), hy:mq:{NAME} (zset: the ids, scored by id),
 * hy:mc:{NAME} (hash: n messages, b bytes of blobs), hy:mid:{NAME}
 * (counter: the last id given, kept so that ids only grow), hy:mail:{B}
 * (zset: "NAME ID" scored by deposit time), hy:rl:{NAME} (hash: the
 * sender's deposit rate).
 *
 * Profiles: hy:p:{NAME} (hash: d the display name, s the status line),
 * absent for none. Deposits and listings delete their mailbox's messages
 * older than the TTL they are given, and each tracker's sweep those of
 * every bucket's index, so that expiry needs no particular tracker alive
 * either. */
#ifndef HYCHAT_STORE_REDIS_LUA_H
#define HYCHAT_STORE_REDIS_LUA_H

#define REDIS_SHA_TEXT 41 /* a SHA-1 in hex, NUL included */
#define REDIS_BUCKETS 64 /* of the user set, the mail's expiry */
/* Of presence (hy:online, hy:names, hy:peer): fewer, since a listing
 * reads every one its page meets. */
#define REDIS_PRESENCE_BUCKETS 4
#define REDIS_TRIM_SLICE 1 /* buckets of presence a reader trims */

/* X(name): the scripts, in store_redis_lua.c's order. */
#define REDIS_SCRIPTS(X) \
	X(ACCOUNT_ADD) \
	X(TOKEN_ISSUE) \
	X(TOKEN_REVOKE) \
	X(SUBMIT_ACCOUNT) \
	X(SUBMIT_ID) \
	X(PRESENCE_PUT) \
	X(PRESENCE_STATS) \
	X(PEER_RENEW) \
	X(PEER_BEAT) \
	X(LIST_STATES) \
	X(PEER_STATE) \
	X(JOIN_USER) \
	X(JOIN_CHANNEL) \
	X(JOIN_LIST) \
	X(LEAVE_CHANNEL) \
	X(MAIL_RATE) \
	X(MAIL_REFUND) \
	X(MAIL_ADD) \
	X(MAIL_LIST) \
	X(MAIL_DELETE) \
	X(PROFILE_SET) \
	X(PROFILE_COPY) \
	X(HINT_BUDGET) \
	X(HINT_ADD) \
	X(HINT_TAKE)

enum redis_script {
#define REDIS_SCRIPT_ENUM(name) REDIS_##name,
	REDIS_SCRIPTS(REDIS_SCRIPT_ENUM)
#undef REDIS_SCRIPT_ENUM
	REDIS_SCRIPT_COUNT
};

/* The script's text. */
const char *redis_script_body(enum redis_script s);
/* Its SHA-1 in hex, as EVALSHA wants it (computed once, thread-safe). */
const char *redis_script_sha(enum redis_script s);
/* name's bucket: the first 16 bits of its SHA-1, modulo REDIS_BUCKETS, as
 * the scripts' bucket() computes it. */
unsigned redis_bucket(const char *name);
/* name's presence bucket, as the scripts' pbucket() computes it. */
unsigned redis_pbucket(const char *name);

#endif
