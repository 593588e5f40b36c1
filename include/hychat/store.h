/* store.h — the tracker's state. First the persistent part, as a
 * synchronous table (accounts with Argon2id hashes, channels,
 * memberships, public keys); then the whole shared state, asynchronous.
 *
 * A store is a table of operations, so that another backend (Redis, for
 * several trackers) can be added without touching the handlers. Every
 * operation is thread-safe and quick (an indexed read or a small write);
 * password hashing is the caller's, off the loop. Operations return 0 (or
 * a count) on success, and -1 with *cause set to an allocated reason the
 * caller frees; names are valid (see registry.h) when they arrive.
 */
#ifndef HYCHAT_STORE_H
#define HYCHAT_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hychat/registry.h"
#include "hychat/util.h"

/* The longest token a backend issues: the Redis store's carry the name. */
#define STORE_TOKEN_TEXT_SIZE (HY_NAME_MAX + 1 + REG_TOKEN_TEXT_SIZE)
#define STORE_EXISTS 1 /* user_add: the name is taken */
#define STORE_HASH_MAX 128 /* room for a crypto_pwhash_str() string */
#define STORE_CHANNELS_PER_CALL 64 /* channels one registration may join */
#define STORE_FULL 2 /* mail_add: the recipient's quota would be passed */
#define STORE_DISPLAY_MAX 64 /* bytes of a profile's display name */
#define STORE_STATUS_MAX 140 /* bytes of a profile's status line */
#define STORE_HINT_MAX 768 /* bytes of a NAT hint, as hint_add stores it */
#define STORE_HINTS_PER_USER 8 /* pending; hint_add drops the oldest */
/* /rendezvous per caller: a burst, then so many a second. Each one makes
 * the peer connect somewhere, so a caller may not make it do so at will. */
#define STORE_RDV_BURST 20
#define STORE_RDV_PER_S 1

struct store;

struct store_ops {
	void (*close)(struct store *st);
	/* Adds an account; STORE_EXISTS if the name is taken. */
	int (*user_add)(struct store *st, const char *name, const char *hash, char **cause);
	/* Adds an account or replaces its password hash. */
	int (*user_set_hash)(struct store *st, const char *name, const char *hash, char **cause);
	/* Copies name's hash to out (STORE_HASH_MAX bytes): 1 found, 0 no such user. */
	int (*user_hash)(struct store *st, const char *name, char *out, char **cause);
	/* Sets *n to the number of accounts. */
	int (*user_count)(struct store *st, uint64_t *n, char **cause);
	int (*pubkey_set)(
	    struct store *st, const char *name, const uint8_t *key, size_t len, char **cause);
	/* Adds name to channel, creating the channel; joining twice is no error. */
	int (*join)(struct store *st, const char *channel, const char *name, char **cause);
	/* Removes name from channel, deleting the channel once it is empty. */
	int (*leave)(struct store *st, const char *channel, const char *name, char **cause);
	/* Calls fn for every membership, ordered by channel then name. */
	int (*each_member)(struct store *st,
	    void (*fn)(const char *channel, const char *name, void *arg), void *arg, char **cause);
	/* Calls fn for every account with a public key. */
	int (*each_pubkey)(struct store *st,
	    void (*fn)(const char *name, const uint8_t *key, size_t len, void *arg), void *arg,
	    char **cause);
	/* Calls fn for every account with its hash, in name order (for
	 * --migrate-from). */
	int (*each_user)(struct store *st,
	    void (*fn)(const char *name, const char *hash, void *arg), void *arg, char **cause);
	/* Profiles; both optional (NULL: the tracker keeps them in memory
	 * only). Sets name's display name and status line ("" for none). */
	int (*profile_set)(struct store *st, const char *name, const char *display,
	    const char *status, char **cause);
	/* Calls fn for every stored profile. */
	int (*each_profile)(struct store *st,
	    void (*fn)(const char *name, const char *display, const char *status, void *arg),
	    void *arg, char **cause);

	/* The mailbox: sealed blobs waiting for their recipient. A message is
	 * its recipient, id (increasing), deposit time (wall-clock ms), size
	 * and blob; never its sender. */
	/* Adds blob for name unless name would then hold more than max_msgs
	 * messages or max_bytes bytes (STORE_FULL); 0 with *id set. */
	int (*mail_add)(struct store *st, const char *name, const uint8_t *blob, size_t len,
	    uint64_t now_ms, uint64_t max_msgs, uint64_t max_bytes, uint64_t *id, char **cause);
	/* Sets *msgs and *bytes to what name's mailbox holds. */
	int (*mail_count)(
	    struct store *st, const char *name, uint64_t *msgs, uint64_t *bytes, char **cause);
	/* Calls fn for name's messages with an id above after, in id order:
	 * at most limit, and no more once max_bytes of blobs were given (at
	 * least one). Returns the count; *more is set if others follow. */
	int (*mail_list)(struct store *st, const char *name, uint64_t after, size_t limit,
	    size_t max_bytes,
	    void (*fn)(uint64_t id, uint64_t time_ms, const uint8_t *blob, size_t len, void *arg),
	    void *arg, int *more, char **cause);
	/* Deletes those of ids that are name's; returns how many went. */
	int (*mail_delete)(
	    struct store *st, const char *name, const uint64_t *ids, size_t n, char **cause);
	/* Deletes every message deposited before before_ms; returns how many. */
	int (*mail_expire)(struct store *st, uint64_t before_ms, char **cause);
};

/* Every backend's handle starts with this. */
struct store {
	const struct store_ops *ops;
};

/* Opens (creating and migrating) the SQLite database at path, in WAL
 * mode. Returns NULL with *cause set if it cannot. */
struct store *store_sqlite_open(const char *path, char **cause);

/* The shared state: everything trackers serving the same users must agree
 * on (accounts, tokens with their lifetime, online peers with their
 * addresses and keys, channels and their members), behind asynchronous
 * operations so that a network store never blocks a loop.
 *
 * Each operation takes a struct store_call: the caller fills the inputs
 * it names, the backend fills the outputs and result, then calls
 * call->done exactly once, either before the operation returns (the
 * in-process backend) or later on call->loop (a network backend). The
 * caller keeps the call alive until done and frees its outputs with
 * store_call_fini(). Names are valid (registry.h) when they arrive.
 *
 * Backends: store_state_local_new() keeps the online state in this
 * process's memory (registry.h) and persists accounts, keys and
 * memberships in a struct store (SQLite); store_state_redis_new() keeps
 * all of it in Redis, shared by every tracker pointed at it. */

enum store_result {
	STORE_DONE = 0,
	STORE_MISSING, /* no such user, token, channel or membership; not online */
	STORE_TAKEN, /* account_add: the name is taken */
	STORE_CAPPED, /* a channel cap refused a join: call->cap says which */
	STORE_DOWN, /* the store is unreachable: retry later (503) */
	STORE_FAILED, /* anything else: call->cause (allocated) says what */
	STORE_BAD_TOKEN, /* peer_beat: the token is unknown or expired (401) */
	STORE_NOT_YOURS, /* peer_beat: the token is another user's (403) */
	STORE_QUOTA, /* mail_add: the recipient's quota would be passed (507) */
	STORE_RATED, /* mail_add: the sender's rate refused it; call->retry_s (429) */
};

enum store_cap {
	STORE_CAP_USER = 1, /* the user is in max_user_channels channels */
	STORE_CAP_TOTAL, /* the store holds max_channels channels */
};

/* One online peer, as listings show it. */
struct store_peer {
	char name[HY_NAME_MAX + 1];
	char ip[REG_IP_MAX + 1];
	unsigned port;
	char pubkey[REG_PUBKEY_TEXT_SIZE]; /* base64; "" when none */
	int online; /* 0 only in a peer_list with all: no address */
	/* What reaches it behind NAT ("" for none): the address its
	 * /submit-info came from, and its IPv6 address beside ip. */
	char observed[REG_IP_MAX + 1];
	char ip6[REG_IP_MAX + 1];
	/* The profile ("" and "" for none): peer_list, peer_info. */
	char display[STORE_DISPLAY_MAX + 1];
	char status[STORE_STATUS_MAX + 1];
};

/* One mailbox message, as mail_list gives it. */
struct store_mail {
	uint64_t id, time_ms; /* time_ms: of the deposit, wall clock */
	size_t len;
	uint8_t *blob; /* allocated; freed by store_call_fini() */
};

/* One channel and its member count. */
struct store_channel {
	char name[HY_CHANNEL_MAX + 1];
	size_t members;
};

struct store_call {
	uv_loop_t *loop; /* where done runs; NULL only with the local backend */
	void (*done)(struct store_call *c);
	void *arg; /* the caller's */

	/* Inputs (each operation names those it reads). */
	char user[HY_NAME_MAX + 1]; /* also the output of token_user */
	const char *token_in; /* a token text as received, not terminated */
	size_t token_len;
	char channel[HY_CHANNEL_MAX + 1]; /* "" for none */
	char after[HY_CHANNEL_MAX + 1]; /* a name to list after; "" from the start */
	size_t limit; /* entries per page */
	int all; /* peer_list: a channel's offline members too */
	/* peer_list: token_in is resolved first, into user (STORE_BAD_TOKEN
	 * if unknown), in the same step: one round trip. */
	int with_token;
	uint64_t ttl_ms; /* a token's or a registration's lifetime */
	size_t max_user_channels, max_channels; /* the caps on joins */
	char ip[REG_IP_MAX + 1];
	unsigned port;
	/* peer_submit: the address the request came from, the IPv6 address
	 * given beside ip ("" for none); hint_add: the hint. */
	char observed[REG_IP_MAX + 1];
	char ip6[REG_IP_MAX + 1];
	size_t nchannels; /* channels to join with the registration */
	char channels[STORE_CHANNELS_PER_CALL][HY_CHANNEL_MAX + 1];
	size_t pubkey_len; /* 0: no key sent */
	uint8_t pubkey[REG_PUBKEY_MAX];
	char hash[STORE_HASH_MAX]; /* account_add's input, account_hash's output */
	const uint8_t *blob; /* mail_add: the caller's, kept until done */
	size_t blob_len;
	uint64_t now_ms, max_msgs, max_bytes; /* mail_add: deposit time, quota */
	char sender[HY_NAME_MAX + 1]; /* mail_add: whose rate the deposit counts to */
	unsigned rate_per_min; /* mail_add: the sender's deposits a minute; 0 no limit */
	uint64_t before_ms; /* mail_add, mail_list: older ones may go first */
	uint64_t after_id; /* mail_list: the messages above it */
	size_t max_page_bytes; /* mail_list: no more once this much was given */
	const uint64_t *ids; /* mail_delete: the caller's */
	size_t nids;
	/* profile_set: the new display name and status line, NULL to keep
	 * the one stored (the caller's, kept until done). */
	const char *display_in, *status_in;

	/* Outputs. */
	enum store_result result;
	char *cause; /* with STORE_FAILED or STORE_DOWN */
	enum store_cap cap; /* with STORE_CAPPED, or the first cap submit met */
	char token[STORE_TOKEN_TEXT_SIZE]; /* token_issue */
	uint32_t peer_id;
	uint64_t total; /* peers online, members of a channel, channels */
	int more; /* further entries follow the page */
	int online, member; /* peer_info */
	struct store_peer info; /* peer_info: address, key, profile; profile_set: the profile */
	unsigned char refused[STORE_CHANNELS_PER_CALL]; /* submit: left out by a cap */
	size_t n; /* entries in names, peers or channels */
	char (*names)[HY_NAME_MAX + 1];
	struct store_peer *peers;
	struct store_channel *chans;
	uint64_t accounts, sessions, channel_count; /* stats (total: peers) */
	uint64_t mail_id; /* mail_add */
	/* token_issue, peer_submit, peer_beat: the user's mailbox holds mail
	 * messages, where the backend tells it with them (mail_known). */
	int mail_known;
	uint64_t mail;
	struct store_mail *mails; /* mail_list: n entries */
	uint64_t deleted; /* mail_delete */
	unsigned retry_s; /* with STORE_RATED: whole seconds until a deposit may pass */
	/* hint_add: the hint for user (a line, its own format) and the
	 * sender, whose rendezvous budget it spends (the caller's, kept until
	 * done); hint_take: the hints (n, allocated, freed by
	 * store_call_fini()). */
	const char *hint_in;
	char (*hints)[STORE_HINT_MAX];

	/* A backend's own, between the steps of one operation (the Redis
	 * store's listings). */
	size_t pending, round_n, round_base;
	int round_partial;
	char round_bound[HY_NAME_MAX + 1];
};

struct store_state;

/* Every operation reads and fills the call as said, then calls done. */
struct store_state_ops {
	/* Makes ready / forgets the loop that calls will come from (a network
	 * backend opens one connection per loop). Called on that loop. */
	void (*attach)(struct store_state *s, uv_loop_t *loop);
	void (*detach)(struct store_state *s, uv_loop_t *loop);
	void (*close)(struct store_state *s);
	/* One slice of the expiry sweep, every TRACKER_SWEEP_MS from one loop;
	 * NULL where expiry needs no sweep. */
	void (*sweep)(struct store_state *s);
	/* user, hash -> STORE_TAKEN if the name exists. */
	void (*account_add)(struct store_state *s, struct store_call *c);
	/* user -> hash; STORE_MISSING if no such account. */
	void (*account_hash)(struct store_state *s, struct store_call *c);
	/* user, ttl_ms -> token; revokes the user's oldest past REG_MAX_TOKENS. */
	void (*token_issue)(struct store_state *s, struct store_call *c);
	/* token_in -> user; STORE_MISSING if unknown or expired. */
	void (*token_user)(struct store_state *s, struct store_call *c);
	/* token_in, user -> revokes it and takes user offline, its NAT hints
	 * dropped (where hint_add keeps them); STORE_MISSING if the token was
	 * not valid. */
	void (*token_revoke)(struct store_state *s, struct store_call *c);
	/* user, ip, port, pubkey, channels, caps, ttl_ms -> peer_id, total,
	 * refused (channels past a cap are left out; the address is
	 * registered all the same). */
	void (*peer_submit)(struct store_state *s, struct store_call *c);
	/* user, ttl_ms -> STORE_MISSING if the user is not online. */
	void (*peer_renew)(struct store_state *s, struct store_call *c);
	/* The heartbeat in one step: token_in, user (the name the request
	 * claims, "" for none), ttl_ms -> user (the token's), renewed;
	 * STORE_BAD_TOKEN, STORE_NOT_YOURS (nothing renewed), STORE_MISSING
	 * (not online). */
	void (*peer_beat)(struct store_state *s, struct store_call *c);
	/* channel ("" all), after, limit, all -> peers online in name order
	 * (with all, and a channel: every member, those offline with online
	 * 0 and no address), more; STORE_MISSING if there is no such channel. */
	void (*peer_list)(struct store_state *s, struct store_call *c);
	/* user (the one looked up), channel -> online, info, member;
	 * STORE_MISSING if there is no such account. */
	void (*peer_info)(struct store_state *s, struct store_call *c);
	/* user, channel, caps, limit -> names (the first members), total;
	 * STORE_CAPPED when a cap refuses it. */
	void (*channel_join)(struct store_state *s, struct store_call *c);
	/* user, channel -> STORE_MISSING if user was not a member. */
	void (*channel_leave)(struct store_state *s, struct store_call *c);
	/* after, limit -> chans, channel_count, more. */
	void (*channel_list)(struct store_state *s, struct store_call *c);
	/* -> total (peers online), channel_count, accounts, sessions. */
	void (*stats)(struct store_state *s, struct store_call *c);
	/* The mailbox, as struct store_ops says; NULL where the backend has
	 * none (the routes answer 501). A backend without a sweep deletes
	 * the messages deposited before before_ms as it goes. user, blob,
	 * now_ms, max_msgs, max_bytes, before_ms, sender, rate_per_min ->
	 * mail_id; STORE_RATED (retry_s) if the sender's bucket (rate_per_min
	 * deposits, refilling rate_per_min a minute, one per sender for every
	 * tracker on the store) is empty, else STORE_QUOTA if the quota would
	 * be passed (the sender's token is then given back). */
	void (*mail_add)(struct store_state *s, struct store_call *c);
	/* user, after_id, limit, max_page_bytes, before_ms -> mails (n),
	 * more. */
	void (*mail_list)(struct store_state *s, struct store_call *c);
	/* user, ids, nids -> deleted (those of ids that were user's). */
	void (*mail_delete)(struct store_state *s, struct store_call *c);
	/* before_ms -> deleted (some of those deposited before it); NULL
	 * where the persistent store's mail_expire does it. */
	void (*mail_expire)(struct store_state *s, struct store_call *c);
	/* Profiles: user, display_in, status_in (NULL keeps that field; both
	 * "" deletes the profile) -> info.display, info.status as they now
	 * are. Listings and peer_info carry them. */
	void (*profile_set)(struct store_state *s, struct store_call *c);
	/* NAT hints, for a user to fetch with its next poll: NULL where the
	 * tracker's own memory is the shared state (one tracker). user (the
	 * one to tell), sender (the caller), hint_in, ttl_ms -> STORE_RATED
	 * if the caller's rendezvous budget (a burst of rate_per_min, then one
	 * a second, for every tracker on the store) is spent; else queued,
	 * the oldest dropped past STORE_HINTS_PER_USER, each kept ttl_ms. */
	void (*hint_add)(struct store_state *s, struct store_call *c);
	/* user -> hints (n), the user's pending ones, oldest first; taken. */
	void (*hint_take)(struct store_state *s, struct store_call *c);
};

/* Every backend's handle starts with this. */
struct store_state {
	const struct store_state_ops *ops;
};

/* Frees what a call's outputs hold, and clears them. */
void store_call_fini(struct store_call *c);
/* Sets c's result and, with a reason, c->cause; then calls done. */
void store_call_finish(struct store_call *c, enum store_result r, const char *cause);

/* The in-process backend on st (used, not owned): loads the memberships
 * and keys st holds. NULL with *cause if st fails. */
struct store_state *store_state_local_new(struct store *st, char **cause);
/* The Redis backend at redis://HOST:PORT[/DB] (HOST resolved now, once),
 * or at the primary that the sentinels of
 * redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER name, followed through
 * a failover, where accounts, keys and memberships are acknowledged only
 * once a replica has them (WAIT). Connections open when a loop attaches.
 * NULL with *cause if the URL is wrong. */
struct store_state *store_state_redis_new(const char *url, char **cause);
/* Blocking Redis calls for the command line, never on a loop. */
/* Creates the account or sets its password hash in the Redis at url. */
int store_redis_set_hash(const char *url, const char *name, const char *hash, char **cause);
/* What a migration copied. */
struct store_migration {
	uint64_t accounts, keys, memberships, channels, profiles, messages;
};
/* Copies every account (hash and key), membership, profile and mailbox
 * message (same ids, deposit times and blobs) of from into the Redis at
 * url, replacing what it holds for those names; online state is not
 * copied (it is rebuilt within a TTL), nor are tokens (users log in
 * again). */
int store_redis_migrate(
    const char *url, struct store *from, struct store_migration *n, char **cause);
/* The local backend's registry, for tests; NULL for another backend. */
struct registry *store_state_local_registry(struct store_state *s);

#endif
