/* store_redis_ops.c — the Redis store's operations: for each, the
 * command or script it sends (store_redis_lua.c) and how the reply fills
 * the call. The connections and the sending are store_redis.c's. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/store.h"
#include "hychat/util.h"
#include "store_redis.h"
#include "store_redis_lua.h"

#define REDIS_TOKEN_ID_BYTES 16 /* the hash of a token that names its key */
#define REDIS_TOKEN_ID_TEXT 32 /* its base64url, NUL included */
#define REDIS_KEY_MAX 128

/* Replies. */

static long long
reply_int(const redisReply *r)
{
	if (r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

static const redisReply *
reply_at(const redisReply *r, size_t i)
{
	return r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

static void
reply_str(const redisReply *r, char *out, size_t outsz)
{
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		snprintf(out, outsz, "%.*s", (int)r->len, r->str);
	else if (outsz > 0)
		out[0] = '\0';
}

/* The next of details' fields, up to sep, into out ("" where absent);
 * *at moves past it. */
static void
details_field(const char **at, const char *end, char sep, char *out, size_t outsz)
{
	const char *p = *at;
	const char *stop = p < end ? memchr(p, sep, (size_t)(end - p)) : NULL;

	if (stop == NULL)
		stop = end;
	snprintf(out, outsz, "%.*s", (int)(stop - p), p);
	*at = stop < end ? stop + 1 : end;
}

/* "IP PORT KEY OBSERVED IP6" (fields may be empty), then, when the peer
 * has a profile, "\nDISPLAY\nSTATUS", into p. Details written before
 * the observed address was kept end after KEY. */
static void
peer_details(const redisReply *r, struct store_peer *p)
{
	char port[16];
	const char *at = r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "";
	const char *end = at + (r != NULL && r->type == REDIS_REPLY_STRING ? r->len : 0);
	const char *nl = memchr(at, '\n', (size_t)(end - at));
	const char *head = nl != NULL ? nl : end;

	details_field(&at, head, ' ', p->ip, sizeof(p->ip));
	details_field(&at, head, ' ', port, sizeof(port));
	details_field(&at, head, ' ', p->pubkey, sizeof(p->pubkey));
	details_field(&at, head, ' ', p->observed, sizeof(p->observed));
	details_field(&at, head, ' ', p->ip6, sizeof(p->ip6));
	p->port = (unsigned)strtoul(port, NULL, 10);
	if (nl != NULL) {
		at = nl + 1;
		details_field(&at, end, '\n', p->display, sizeof(p->display));
		details_field(&at, end, '\n', p->status, sizeof(p->status));
	}
}

static enum store_result
flag(const redisReply *r, enum store_result if_zero)
{
	return reply_int(r) != 0 ? STORE_DONE : if_zero;
}

/* A count of mailbox messages that came with another answer. */
static void
mail_known(struct store_call *c, const redisReply *r)
{
	if (r == NULL || r->type != REDIS_REPLY_INTEGER)
		return;
	c->mail = (uint64_t)reply_int(r);
	c->mail_known = 1;
}

/* A reply that fills nothing. */
static enum store_result
parse_any(struct store_call *c, const redisReply *r)
{
	(void)c;
	(void)r;
	return STORE_DONE;
}

/* Accounts. */

static enum store_result
parse_added(struct store_call *c, const redisReply *r)
{
	return flag(r, STORE_TAKEN);
}

static void user_key(char *out, size_t outsz, const char *user);

/* The account, and its name in its bucket's set (for /stats) in the same
 * write: a name already there (taken) is no change. */
static void
redis_account_add(struct store_state *s, struct store_call *c)
{
	char k[REDIS_KEY_MAX];
	struct redis_req *q[2] = { redis_req_new(c, REDIS_ACCOUNT_ADD, parse_added),
		redis_req_new(c, -1, parse_any) };

	user_key(k, sizeof(k), c->user);
	redis_req_key(q[0], k);
	redis_req_str(q[0], c->hash);
	redis_req_replicated(q[0]);
	snprintf(k, sizeof(k), "hy:users:{%u}", redis_bucket(c->user));
	redis_req_str(q[1], "SADD");
	redis_req_str(q[1], k);
	redis_req_str(q[1], c->user);
	redis_req_start_all(s, q, 2);
}

static enum store_result
parse_hash(struct store_call *c, const redisReply *r)
{
	if (r->type != REDIS_REPLY_STRING || r->len >= sizeof(c->hash)) {
		return STORE_MISSING;
	}
	memcpy(c->hash, r->str, r->len);
	c->hash[r->len] = '\0';
	return STORE_DONE;
}

static void
user_key(char *out, size_t outsz, const char *user)
{
	snprintf(out, outsz, "hy:u:{%s}", user);
}

static void
redis_account_hash(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, -1, parse_hash);
	char key[REDIS_KEY_MAX];

	user_key(key, sizeof(key), c->user);
	redis_req_str(q, "HGET");
	redis_req_str(q, key);
	redis_req_str(q, "h");
	redis_req_start(s, q);
}

/* Tokens: Redis holds a hash of each token, never the token. A token is
 * the user's name, REDIS_TOKEN_SEP and REG_TOKEN_BYTES of randomness in
 * base64url: the name says which presence bucket holds the token's key,
 * hy:t:{P}:ID (ID a hash of the whole text), so that a heartbeat reads
 * the token and renews the presence in one slot and one call. A token
 * whose name was altered hashes to another ID, which names no key. */

#define REDIS_TOKEN_SEP '~' /* in token68, never in a name */

/* A token as received, resolved: its user, presence bucket and key. */
struct token_ref {
	char user[HY_NAME_MAX + 1];
	unsigned pbucket;
	char id[REDIS_TOKEN_ID_TEXT];
	char key[REDIS_KEY_MAX];
};

/* Fills t from c's token; -1 if the text could not be a token at all
 * (which spares Redis the rest). */
static int
token_ref(const struct store_call *c, struct token_ref *t)
{
	const char *sep = memchr(c->token_in, REDIS_TOKEN_SEP, c->token_len);

	if (sep == NULL)
		return -1;
	size_t nlen = (size_t)(sep - c->token_in);
	if (c->token_len - nlen - 1 != REG_TOKEN_TEXT_SIZE - 1 || !hy_name_valid(c->token_in, nlen))
		return -1;
	memcpy(t->user, c->token_in, nlen);
	t->user[nlen] = '\0';
	t->pbucket = redis_pbucket(t->user);
	unsigned char h[REDIS_TOKEN_ID_BYTES];
	crypto_generichash(h, sizeof(h), (const unsigned char *)c->token_in, c->token_len, NULL, 0);
	sodium_bin2base64(
	    t->id, sizeof(t->id), h, sizeof(h), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(t->key, sizeof(t->key), "hy:t:{%u}:%s", t->pbucket, t->id);
	return 0;
}

/* The key of presence bucket p's k ("online", "names", "peer", "ut:NAME"
 * with its suffix...): hy:K:{P}, then suffix. */
static void
pkey(char *out, size_t outsz, const char *k, unsigned p, const char *suffix)
{
	snprintf(out, outsz, "hy:%s:{%u}%s", k, p, suffix);
}

/* The count of a user's mailbox, read beside another answer. */
static enum store_result
parse_mailcount(struct store_call *c, const redisReply *r)
{
	c->mail = r->type == REDIS_REPLY_STRING ? (uint64_t)strtoull(r->str, NULL, 10) : 0;
	c->mail_known = 1;
	return STORE_DONE;
}

/* A request for user's mail count (hy:mc:{NAME}, its own slot). */
static struct redis_req *
mailcount_req(struct store_call *c, const char *user)
{
	char key[REDIS_KEY_MAX];
	struct redis_req *q = redis_req_new(c, -1, parse_mailcount);

	snprintf(key, sizeof(key), "hy:mc:{%s}", user);
	redis_req_str(q, "HGET");
	redis_req_str(q, key);
	redis_req_str(q, "n");
	return q;
}

static void
redis_token_issue(struct store_state *s, struct store_call *c)
{
	unsigned char raw[REG_TOKEN_BYTES];
	char text[REG_TOKEN_TEXT_SIZE], k[REDIS_KEY_MAX], suffix[HY_NAME_MAX + 2];
	struct token_ref t;
	struct store_call probe = { 0 };

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(
	    text, sizeof(text), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	snprintf(c->token, sizeof(c->token), "%s%c%s", c->user, REDIS_TOKEN_SEP, text);
	sodium_memzero(text, sizeof(text));
	probe.token_in = c->token;
	probe.token_len = strlen(c->token);
	if (token_ref(&probe, &t) < 0) {
		store_call_finish(c, STORE_FAILED, "redis: a token for an invalid name");
		return;
	}
	struct redis_req *q[2] = { redis_req_new(c, REDIS_TOKEN_ISSUE, parse_any),
		mailcount_req(c, c->user) };
	snprintf(suffix, sizeof(suffix), ":%s", c->user);
	redis_req_key(q[0], t.key);
	pkey(k, sizeof(k), "ut", t.pbucket, suffix);
	redis_req_key(q[0], k);
	pkey(k, sizeof(k), "sessions", t.pbucket, "");
	redis_req_key(q[0], k);
	redis_req_str(q[0], c->user);
	redis_req_str(q[0], t.id);
	redis_req_u64(q[0], c->ttl_ms);
	redis_req_u64(q[0], REG_MAX_TOKENS);
	pkey(k, sizeof(k), "t", t.pbucket, ":");
	redis_req_str(q[0], k);
	redis_req_start_all(s, q, 2);
}

static enum store_result
parse_token_user(struct store_call *c, const redisReply *r)
{
	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > HY_NAME_MAX) {
		return STORE_MISSING;
	}
	memcpy(c->user, r->str, r->len);
	c->user[r->len] = '\0';
	return STORE_DONE;
}

static void
redis_token_user(struct store_state *s, struct store_call *c)
{
	struct token_ref t;

	if (token_ref(c, &t) < 0) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	struct redis_req *q = redis_req_new(c, -1, parse_token_user);
	redis_req_str(q, "GET");
	redis_req_str(q, t.key);
	redis_req_start(s, q);
}

static enum store_result
parse_revoked(struct store_call *c, const redisReply *r)
{
	return flag(r, STORE_MISSING);
}

static void
redis_token_revoke(struct store_state *s, struct store_call *c)
{
	static const char *const keys[] = { "sessions", "online", "names", "peer" };
	char k[REDIS_KEY_MAX], suffix[HY_NAME_MAX + 2];
	struct token_ref t;

	if (token_ref(c, &t) < 0) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	struct redis_req *q = redis_req_new(c, REDIS_TOKEN_REVOKE, parse_revoked);
	redis_req_key(q, t.key);
	snprintf(suffix, sizeof(suffix), ":%s", t.user);
	pkey(k, sizeof(k), "ut", t.pbucket, suffix);
	redis_req_key(q, k);
	for (size_t i = 0; i < HY_ARRAY_LEN(keys); i++) {
		pkey(k, sizeof(k), keys[i], t.pbucket, "");
		redis_req_key(q, k);
	}
	redis_req_str(q, t.user);
	redis_req_str(q, t.id);
	redis_req_start(s, q);
}

/* Channels: joining is three calls, one slot each (store_redis_lua.c
 * says why in that order). A request's tag is the channel's index in
 * c->channels for a registration, JOIN_ONE for channel_join (c->channel),
 * JOIN_AGAIN for channel_join by a member. */

#define JOIN_ONE (-1)
#define JOIN_AGAIN (-2)

static void submit_from(struct store_call *c, size_t k);

static const char *
join_name(const struct store_call *c, int tag)
{
	return tag < 0 ? c->channel : c->channels[tag];
}

/* A plain command on one key and then a word or two (NULL: none). */
static struct redis_req *
cmd_req(struct store_call *c, redis_parse_fn parse, const char *cmd, const char *key,
    const char *a, const char *b)
{
	struct redis_req *q = redis_req_new(c, -1, parse);

	redis_req_str(q, cmd);
	redis_req_str(q, key);
	if (a != NULL)
		redis_req_str(q, a);
	if (b != NULL)
		redis_req_str(q, b);
	return q;
}

static enum store_result parse_join_user(struct store_call *c, const redisReply *r);

static struct redis_req *
join_req(struct store_call *c, int tag)
{
	char k[REDIS_KEY_MAX];
	struct redis_req *q = redis_req_new(c, REDIS_JOIN_USER, parse_join_user);

	snprintf(k, sizeof(k), "hy:uc:{%s}", c->user);
	redis_req_tag(q, tag);
	redis_req_key(q, k);
	redis_req_str(q, join_name(c, tag));
	redis_req_u64(q, c->max_user_channels);
	return q;
}

/* A cap refused channel tag: channel_join ends with it; a registration
 * notes it and goes on with the next channel. */
static enum store_result
join_capped(struct store_call *c, int tag, enum store_cap cap)
{
	if (tag < 0) {
		c->cap = cap;
		return STORE_CAPPED;
	}
	c->refused[tag] = 1;
	if (c->cap == 0)
		c->cap = cap;
	submit_from(c, (size_t)tag + 1);
	return STORE_DONE;
}

static enum store_result parse_join_channel(struct store_call *c, const redisReply *r);

static enum store_result
parse_join_user(struct store_call *c, const redisReply *r)
{
	int tag = redis_tag();
	long long v = reply_int(r);
	char k[REDIS_KEY_MAX];

	if (v < 0)
		return join_capped(c, tag, STORE_CAP_USER);
	if (v == 2 && tag >= 0) {
		submit_from(c, (size_t)tag + 1); /* a member already: nothing to do */
		return STORE_DONE;
	}
	struct redis_req *q = redis_req_new(c, REDIS_JOIN_CHANNEL, parse_join_channel);
	redis_req_tag(q, v == 2 ? JOIN_AGAIN : tag);
	snprintf(k, sizeof(k), "hy:c:{%s}", join_name(c, tag));
	redis_req_key(q, k);
	redis_req_str(q, c->user);
	redis_req_u64(q, tag < 0 ? c->limit : 0);
	redis_req_then(q);
	return STORE_DONE;
}

static enum store_result parse_join_list(struct store_call *c, const redisReply *r);

static enum store_result
parse_join_channel(struct store_call *c, const redisReply *r)
{
	int tag = redis_tag();

	if (tag < 0) {
		const redisReply *names = reply_at(r, 1);
		size_t n = names != NULL ? names->elements : 0;
		c->total = (uint64_t)reply_int(reply_at(r, 0));
		c->names = xcalloc(n > 0 ? n : 1, sizeof(*c->names));
		for (size_t i = 0; i < n; i++)
			reply_str(names->element[i], c->names[c->n++], sizeof(c->names[0]));
	}
	if (tag == JOIN_AGAIN)
		return STORE_DONE;
	struct redis_req *q = redis_req_new(c, REDIS_JOIN_LIST, parse_join_list);
	redis_req_tag(q, tag);
	redis_req_key(q, "hy:channels");
	redis_req_str(q, join_name(c, tag));
	redis_req_u64(q, c->max_channels);
	redis_req_then(q);
	return STORE_DONE;
}

static enum store_result
parse_join_list(struct store_call *c, const redisReply *r)
{
	int tag = redis_tag();
	char k[REDIS_KEY_MAX];

	if (reply_int(r) == -2) {
		/* A new channel past the total's cap: the joins undone. */
		snprintf(k, sizeof(k), "hy:c:{%s}", join_name(c, tag));
		redis_req_then(cmd_req(c, parse_any, "ZREM", k, c->user, NULL));
		snprintf(k, sizeof(k), "hy:uc:{%s}", c->user);
		redis_req_then(cmd_req(c, parse_any, "SREM", k, join_name(c, tag), NULL));
		return join_capped(c, tag, STORE_CAP_TOTAL);
	}
	if (tag >= 0)
		submit_from(c, (size_t)tag + 1);
	return STORE_DONE;
}

/* Peers. A registration: the account (its key kept or replaced, its id,
 * profile and mail count), an id from hy:nextid if it has none yet, each
 * channel joined in turn, then presence: every bucket trimmed and
 * counted, the user's listed with its details. The account's key and
 * profile wait in c->info for the details. */

static enum store_result
parse_presence_count(struct store_call *c, const redisReply *r)
{
	c->total += (uint64_t)reply_int(r);
	return STORE_DONE;
}

/* Requests for presence bucket p's keys (of KEYS, the first nkeys of
 * online, names, peer, sessions). */
static void
presence_keys(struct redis_req *q, unsigned p, size_t nkeys)
{
	static const char *const keys[] = { "online", "names", "peer", "sessions" };
	char k[REDIS_KEY_MAX];

	for (size_t i = 0; i < nkeys && i < HY_ARRAY_LEN(keys); i++) {
		pkey(k, sizeof(k), keys[i], p, "");
		redis_req_key(q, k);
	}
}

static void
submit_presence(struct store_call *c)
{
	char details[REG_IP_MAX * 3 + REG_PUBKEY_TEXT_SIZE + STORE_DISPLAY_MAX +
	    STORE_STATUS_MAX + 32];
	unsigned mine = redis_pbucket(c->user);
	int profiled = c->info.display[0] != '\0' || c->info.status[0] != '\0';

	snprintf(details, sizeof(details), "%s %u %s %s %s%s%s%s%s", c->ip, c->port,
	    c->info.pubkey, c->observed, c->ip6, profiled ? "\n" : "",
	    profiled ? c->info.display : "", profiled ? "\n" : "", profiled ? c->info.status : "");
	c->total = 0;
	for (unsigned p = 0; p < REDIS_PRESENCE_BUCKETS; p++) {
		struct redis_req *q = redis_req_new(c, REDIS_PRESENCE_PUT, parse_presence_count);
		presence_keys(q, p, 3);
		redis_req_str(q, p == mine ? c->user : "");
		redis_req_u64(q, c->ttl_ms);
		redis_req_str(q, p == mine ? details : "");
		redis_req_then(q);
	}
}

/* Joins c->channels[k] and those after it, then lists the user. */
static void
submit_from(struct store_call *c, size_t k)
{
	if (k < c->nchannels)
		redis_req_then(join_req(c, (int)k));
	else
		submit_presence(c);
}

static enum store_result
parse_submit_id(struct store_call *c, const redisReply *r)
{
	c->peer_id = (uint32_t)reply_int(r);
	submit_from(c, 0);
	return STORE_DONE;
}

static enum store_result
parse_next_id(struct store_call *c, const redisReply *r)
{
	char k[REDIS_KEY_MAX];
	struct redis_req *q = redis_req_new(c, REDIS_SUBMIT_ID, parse_submit_id);

	user_key(k, sizeof(k), c->user);
	redis_req_key(q, k);
	redis_req_u64(q, (uint64_t)reply_int(r));
	redis_req_then(q);
	return STORE_DONE;
}

static enum store_result
parse_submit_account(struct store_call *c, const redisReply *r)
{
	long long id = reply_int(reply_at(r, 0));

	reply_str(reply_at(r, 1), c->info.pubkey, sizeof(c->info.pubkey));
	reply_str(reply_at(r, 2), c->info.display, sizeof(c->info.display));
	reply_str(reply_at(r, 3), c->info.status, sizeof(c->info.status));
	mail_known(c, reply_at(r, 4));
	if (id <= 0) {
		redis_req_then(cmd_req(c, parse_next_id, "INCR", "hy:nextid", NULL, NULL));
		return STORE_DONE;
	}
	c->peer_id = (uint32_t)id;
	submit_from(c, 0);
	return STORE_DONE;
}

static void
redis_peer_submit(struct store_state *s, struct store_call *c)
{
	char key[REG_PUBKEY_TEXT_SIZE] = "", k[REDIS_KEY_MAX];

	if (c->pubkey_len > 0)
		sodium_bin2base64(
		    key, sizeof(key), c->pubkey, c->pubkey_len, sodium_base64_VARIANT_ORIGINAL);
	c->cap = 0;
	memset(c->refused, 0, sizeof(c->refused));
	struct redis_req *q = redis_req_new(c, REDIS_SUBMIT_ACCOUNT, parse_submit_account);
	user_key(k, sizeof(k), c->user);
	redis_req_key(q, k);
	snprintf(k, sizeof(k), "hy:p:{%s}", c->user);
	redis_req_key(q, k);
	snprintf(k, sizeof(k), "hy:mc:{%s}", c->user);
	redis_req_key(q, k);
	redis_req_str(q, key);
	redis_req_replicated(q);
	redis_req_start(s, q);
}

static enum store_result
parse_renewed(struct store_call *c, const redisReply *r)
{
	return flag(r, STORE_MISSING);
}

static void
redis_peer_renew(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_PEER_RENEW, parse_renewed);
	char k[REDIS_KEY_MAX];

	pkey(k, sizeof(k), "online", redis_pbucket(c->user), "");
	redis_req_key(q, k);
	redis_req_str(q, c->user);
	redis_req_u64(q, c->ttl_ms);
	redis_req_start(s, q);
}

static enum store_result
parse_beat(struct store_call *c, const redisReply *r)
{
	static const enum store_result results[] = { STORE_NOT_YOURS, STORE_BAD_TOKEN,
		STORE_MISSING, STORE_DONE };
	long long v = reply_int(r->type == REDIS_REPLY_ARRAY ? reply_at(r, 0) : r);

	if (v == 1) {
		const redisReply *user = reply_at(r, 1);
		if (user != NULL && user->type == REDIS_REPLY_STRING && user->len > 0 &&
		    user->len <= HY_NAME_MAX)
			reply_str(user, c->user, sizeof(c->user));
	}
	return v >= -2 && v <= 1 ? results[v + 2] : STORE_FAILED;
}

/* The token checked and the presence renewed in the token's slot, and,
 * in the same write, the mail count of the user the token names (read
 * for nothing if the token is bad). */
static void
redis_peer_beat(struct store_state *s, struct store_call *c)
{
	struct token_ref t;
	char k[REDIS_KEY_MAX];

	if (token_ref(c, &t) < 0) {
		store_call_finish(c, STORE_BAD_TOKEN, NULL);
		return;
	}
	struct redis_req *q[2] = { redis_req_new(c, REDIS_PEER_BEAT, parse_beat),
		mailcount_req(c, t.user) };
	redis_req_key(q[0], t.key);
	pkey(k, sizeof(k), "online", t.pbucket, "");
	redis_req_key(q[0], k);
	redis_req_str(q[0], t.user);
	redis_req_str(q[0], c->user);
	redis_req_u64(q[0], c->ttl_ms);
	redis_req_start_all(s, q, 2);
}

/* Listings: a page of peers in name order, read in rounds of up to
 * LIST_CHUNK names, each round in steps of one slot per call:
 *  1. the names after c->after: a channel's members, or every presence
 *     bucket's names merged (up to the first name past which a bucket
 *     read in full may hold more);
 *  2. for each presence bucket the names fall in, their details if
 *     online (LIST_STATES, one call a bucket);
 *  3. with all, for each offline member, its key and profile;
 *  4. the round's peers added to the page in order; if the page is not
 *     full and more names may follow, c->after moves to the round's last
 *     name and the next round begins.
 * c->names holds the round's names, c->peers the page and, past
 * c->limit + 1, the round's entries; c->pending counts a step's calls
 * not yet answered, c->round_n the round's names. */

#define LIST_CHUNK_MAX 256
#define LIST_ROUND_MAX (2 * LIST_CHUNK_MAX + REDIS_PRESENCE_BUCKETS + 1)

static size_t
list_chunk(const struct store_call *c)
{
	return c->limit + 1 < LIST_CHUNK_MAX ? c->limit + 1 : LIST_CHUNK_MAX;
}

/* Names a bucket gives a merged round: twice its share, and one. */
static size_t
list_per_bucket(const struct store_call *c)
{
	return (2 * list_chunk(c) + REDIS_PRESENCE_BUCKETS - 1) / REDIS_PRESENCE_BUCKETS + 1;
}

static struct store_peer *
list_entry(struct store_call *c, size_t i)
{
	return &c->peers[c->limit + 1 + i];
}

static void list_round(struct store_call *c);

/* Step 4. */
static void
list_round_end(struct store_call *c, int partial)
{
	for (size_t i = 0; i < c->round_n; i++) {
		struct store_peer *e = list_entry(c, i);
		int shown = e->online ? e->ip[0] != '\0' : c->all && c->channel[0] != '\0';
		if (!shown)
			continue;
		if (c->n == c->limit) {
			c->more = 1;
			return;
		}
		snprintf(e->name, sizeof(e->name), "%s", c->names[i]);
		c->peers[c->n++] = *e;
	}
	if (c->round_n == 0 || (c->round_n < list_chunk(c) && !partial))
		return;
	snprintf(c->after, sizeof(c->after), "%s", c->names[c->round_n - 1]);
	list_round(c);
}

/* Step 3's answers: an offline member's key, then its profile. */
static enum store_result
parse_list_key(struct store_call *c, const redisReply *r)
{
	reply_str(r, list_entry(c, (size_t)redis_tag())->pubkey, sizeof(c->peers[0].pubkey));
	if (--c->pending == 0)
		list_round_end(c, c->round_partial);
	return STORE_DONE;
}

static enum store_result
parse_list_profile(struct store_call *c, const redisReply *r)
{
	struct store_peer *e = list_entry(c, (size_t)redis_tag());

	reply_str(reply_at(r, 0), e->display, sizeof(e->display));
	reply_str(reply_at(r, 1), e->status, sizeof(e->status));
	if (--c->pending == 0)
		list_round_end(c, c->round_partial);
	return STORE_DONE;
}

/* Step 2's answer for bucket tag: the details of its names, in the order
 * they were sent ("" offline). */
static enum store_result
parse_list_states(struct store_call *c, const redisReply *r)
{
	unsigned p = (unsigned)redis_tag();
	size_t j = 0;
	char k[REDIS_KEY_MAX];

	for (size_t i = 0; i < c->round_n; i++) {
		if (redis_pbucket(c->names[i]) != p)
			continue;
		const redisReply *d = reply_at(r, j++);
		struct store_peer *e = list_entry(c, i);
		memset(e, 0, sizeof(*e));
		e->online = d != NULL && d->type == REDIS_REPLY_STRING && d->len > 0;
		if (e->online)
			peer_details(d, e);
	}
	if (--c->pending > 0)
		return STORE_DONE;
	if (!c->all || c->channel[0] == '\0') {
		list_round_end(c, c->round_partial);
		return STORE_DONE;
	}
	for (size_t i = 0; i < c->round_n; i++) {
		if (list_entry(c, i)->online)
			continue;
		user_key(k, sizeof(k), c->names[i]);
		struct redis_req *q = cmd_req(c, parse_list_key, "HGET", k, "pk", NULL);
		redis_req_tag(q, (int)i);
		redis_req_then(q);
		snprintf(k, sizeof(k), "hy:p:{%s}", c->names[i]);
		q = cmd_req(c, parse_list_profile, "HMGET", k, "d", "s");
		redis_req_tag(q, (int)i);
		redis_req_then(q);
		c->pending += 2;
	}
	if (c->pending == 0)
		list_round_end(c, c->round_partial);
	return STORE_DONE;
}

/* Step 2: one call for each presence bucket the round's names fall in. */
static void
list_states(struct store_call *c)
{
	struct redis_req *q[REDIS_PRESENCE_BUCKETS] = { NULL };
	char k[REDIS_KEY_MAX];

	c->pending = 0;
	for (size_t i = 0; i < c->round_n; i++) {
		unsigned p = redis_pbucket(c->names[i]);
		if (q[p] == NULL) {
			q[p] = redis_req_new(c, REDIS_LIST_STATES, parse_list_states);
			redis_req_tag(q[p], (int)p);
			pkey(k, sizeof(k), "online", p, "");
			redis_req_key(q[p], k);
			pkey(k, sizeof(k), "peer", p, "");
			redis_req_key(q[p], k);
			c->pending++;
		}
		redis_req_str(q[p], c->names[i]);
	}
	for (unsigned p = 0; p < REDIS_PRESENCE_BUCKETS; p++)
		if (q[p] != NULL)
			redis_req_then(q[p]);
	if (c->pending == 0)
		list_round_end(c, 0);
}

/* Byte order, as ZRANGEBYLEX's. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Step 1's answer: a channel's names, or one presence bucket's (merged
 * once every bucket has answered). */
static enum store_result
parse_list_names(struct store_call *c, const redisReply *r)
{
	size_t got = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
	size_t room = LIST_ROUND_MAX - c->round_n;

	for (size_t i = 0; i < got && i < room; i++)
		reply_str(r->element[i], c->names[c->round_n++], sizeof(c->names[0]));
	if (c->channel[0] != '\0') {
		c->round_partial = 0;
		list_states(c);
		return STORE_DONE;
	}
	/* A bucket that gave all it was asked may hold more past its last:
	 * the merged round stops at the lowest such name. */
	if (got == list_per_bucket(c) && got > 0 && r->element[got - 1]->type == REDIS_REPLY_STRING &&
	    (c->round_bound[0] == '\0' || strcmp(r->element[got - 1]->str, c->round_bound) < 0))
		reply_str(r->element[got - 1], c->round_bound, sizeof(c->round_bound));
	if (--c->pending > 0)
		return STORE_DONE;
	qsort(c->names, c->round_n, sizeof(c->names[0]), name_cmp);
	size_t keep = 0;
	while (keep < c->round_n && keep < list_chunk(c) &&
	    (c->round_bound[0] == '\0' || strcmp(c->names[keep], c->round_bound) <= 0))
		keep++;
	c->round_n = keep;
	c->round_partial = c->round_bound[0] != '\0';
	list_states(c);
	return STORE_DONE;
}

/* Step 1: requests for the names after c->after, into qs (returns how
 * many: one for a channel, one per presence bucket for every peer). */
static size_t
list_round_reqs(struct store_call *c, struct redis_req **qs)
{
	char start[sizeof(c->after) + 1], k[REDIS_KEY_MAX];
	int channel = c->channel[0] != '\0';
	size_t want = channel ? list_chunk(c) : list_per_bucket(c);

	snprintf(start, sizeof(start), "%s%s", c->after[0] != '\0' ? "(" : "-", c->after);
	c->round_n = 0;
	c->round_bound[0] = '\0';
	c->pending = channel ? 1 : REDIS_PRESENCE_BUCKETS;
	for (unsigned p = 0; p < c->pending; p++) {
		if (channel)
			snprintf(k, sizeof(k), "hy:c:{%s}", c->channel);
		else
			pkey(k, sizeof(k), "names", p, "");
		qs[p] = cmd_req(c, parse_list_names, "ZRANGEBYLEX", k, start, "+");
		redis_req_str(qs[p], "LIMIT");
		redis_req_str(qs[p], "0");
		redis_req_u64(qs[p], want);
	}
	return c->pending;
}

static void
list_round(struct store_call *c)
{
	struct redis_req *qs[REDIS_PRESENCE_BUCKETS];
	size_t n = list_round_reqs(c, qs);

	for (size_t i = 0; i < n; i++)
		redis_req_then(qs[i]);
}

static enum store_result
parse_list_token(struct store_call *c, const redisReply *r)
{
	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > HY_NAME_MAX)
		return STORE_BAD_TOKEN;
	reply_str(r, c->user, sizeof(c->user));
	return STORE_DONE;
}

static enum store_result
parse_list_channel(struct store_call *c, const redisReply *r)
{
	(void)c;
	return reply_int(r) == 1 ? STORE_DONE : STORE_MISSING;
}

/* The start: the token, whether the channel exists, the trim of presence
 * (every bucket for a listing of every peer, else one that turns with
 * the clock) and the first round's names, in one write. */
static void
redis_peer_list(struct store_state *s, struct store_call *c)
{
	struct token_ref t;
	struct redis_req *q[2 + 2 * REDIS_PRESENCE_BUCKETS];
	size_t n = 0;
	char k[REDIS_KEY_MAX];
	int channel = c->channel[0] != '\0';

	if (c->with_token) {
		if (token_ref(c, &t) < 0) {
			store_call_finish(c, STORE_BAD_TOKEN, NULL);
			return;
		}
		q[n++] = cmd_req(c, parse_list_token, "GET", t.key, NULL, NULL);
	}
	if (channel) {
		snprintf(k, sizeof(k), "hy:c:{%s}", c->channel);
		q[n++] = cmd_req(c, parse_list_channel, "EXISTS", k, NULL, NULL);
	}
	unsigned first = channel ? (unsigned)(hy_now_ms() / 100) % REDIS_PRESENCE_BUCKETS : 0;
	unsigned trims = channel ? REDIS_TRIM_SLICE : REDIS_PRESENCE_BUCKETS;
	for (unsigned i = 0; i < trims; i++) {
		q[n] = redis_req_new(c, REDIS_PRESENCE_PUT, parse_any);
		presence_keys(q[n], (first + i) % REDIS_PRESENCE_BUCKETS, 3);
		redis_req_str(q[n], "");
		redis_req_str(q[n], "0");
		redis_req_str(q[n++], "");
	}
	c->n = 0;
	c->more = 0;
	c->names = xcalloc(LIST_ROUND_MAX, sizeof(*c->names));
	c->peers = xcalloc(c->limit + 1 + LIST_ROUND_MAX, sizeof(*c->peers));
	n += list_round_reqs(c, q + n);
	redis_req_start_all(s, q, n);
}

/* peer_info: presence, the account, the profile and the membership, in
 * one write (four slots); the presence's details first, since the
 * account's key and the profile override what they carry. */

static enum store_result
parse_info_state(struct store_call *c, const redisReply *r)
{
	c->online = reply_int(reply_at(r, 0)) != 0;
	if (c->online)
		peer_details(reply_at(r, 1), &c->info);
	return STORE_DONE;
}

static enum store_result
parse_info_account(struct store_call *c, const redisReply *r)
{
	const redisReply *h = reply_at(r, 0);

	if (h == NULL || h->type != REDIS_REPLY_STRING)
		return STORE_MISSING;
	reply_str(reply_at(r, 1), c->info.pubkey, sizeof(c->info.pubkey));
	return STORE_DONE;
}

static enum store_result
parse_info_profile(struct store_call *c, const redisReply *r)
{
	reply_str(reply_at(r, 0), c->info.display, sizeof(c->info.display));
	reply_str(reply_at(r, 1), c->info.status, sizeof(c->info.status));
	return STORE_DONE;
}

static enum store_result
parse_info_member(struct store_call *c, const redisReply *r)
{
	c->member = r->type == REDIS_REPLY_STRING;
	return STORE_DONE;
}

static void
redis_peer_info(struct store_state *s, struct store_call *c)
{
	char k[REDIS_KEY_MAX];
	struct redis_req *q[4];
	size_t n = 0;

	c->online = c->member = 0;
	q[n] = redis_req_new(c, REDIS_PEER_STATE, parse_info_state);
	presence_keys(q[n], redis_pbucket(c->user), 1);
	pkey(k, sizeof(k), "peer", redis_pbucket(c->user), "");
	redis_req_key(q[n], k);
	redis_req_str(q[n++], c->user);
	user_key(k, sizeof(k), c->user);
	q[n++] = cmd_req(c, parse_info_account, "HMGET", k, "h", "pk");
	snprintf(k, sizeof(k), "hy:p:{%s}", c->user);
	q[n++] = cmd_req(c, parse_info_profile, "HMGET", k, "d", "s");
	if (c->channel[0] != '\0') {
		snprintf(k, sizeof(k), "hy:c:{%s}", c->channel);
		q[n++] = cmd_req(c, parse_info_member, "ZSCORE", k, c->user, NULL);
	}
	redis_req_start_all(s, q, n);
}

/* Channels. */

static void
redis_channel_join(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = join_req(c, JOIN_ONE);

	redis_req_replicated(q);
	redis_req_start(s, q);
}

/* Leaving: the channel's side, the user's, then, if the channel is gone,
 * the list of channels; a join meanwhile puts it back (parse_still). */

static enum store_result
parse_still(struct store_call *c, const redisReply *r)
{
	if (reply_int(r) == 1)
		redis_req_then(cmd_req(c, parse_any, "ZADD", "hy:channels", "0", c->channel));
	return STORE_DONE;
}

static enum store_result
parse_unlisted(struct store_call *c, const redisReply *r)
{
	char k[REDIS_KEY_MAX];

	(void)r;
	snprintf(k, sizeof(k), "hy:c:{%s}", c->channel);
	redis_req_then(cmd_req(c, parse_still, "EXISTS", k, NULL, NULL));
	return STORE_DONE;
}

static enum store_result
parse_left(struct store_call *c, const redisReply *r)
{
	long long left = reply_int(r);
	char k[REDIS_KEY_MAX];

	if (left < 0)
		return STORE_MISSING;
	snprintf(k, sizeof(k), "hy:uc:{%s}", c->user);
	redis_req_then(cmd_req(c, parse_any, "SREM", k, c->channel, NULL));
	if (left == 0)
		redis_req_then(cmd_req(c, parse_unlisted, "ZREM", "hy:channels", c->channel, NULL));
	return STORE_DONE;
}

static void
redis_channel_leave(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_LEAVE_CHANNEL, parse_left);
	char k[REDIS_KEY_MAX];

	snprintf(k, sizeof(k), "hy:c:{%s}", c->channel);
	redis_req_key(q, k);
	redis_req_str(q, c->user);
	redis_req_replicated(q);
	redis_req_start(s, q);
}

/* The list of channels: a page of names from hy:channels, then each
 * one's members (its own slot), in one write. */

static enum store_result
parse_channel_count(struct store_call *c, const redisReply *r)
{
	c->channel_count = (uint64_t)reply_int(r);
	return STORE_DONE;
}

static enum store_result
parse_channel_members(struct store_call *c, const redisReply *r)
{
	int i = redis_tag();

	if (i >= 0 && (size_t)i < c->n)
		c->chans[i].members = (size_t)reply_int(r);
	return STORE_DONE;
}

static enum store_result
parse_channel_names(struct store_call *c, const redisReply *r)
{
	size_t got = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
	size_t n = got < c->limit ? got : c->limit;
	char k[REDIS_KEY_MAX];

	c->more = got > c->limit;
	c->chans = xcalloc(n > 0 ? n : 1, sizeof(*c->chans));
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		reply_str(r->element[i], c->chans[i].name, sizeof(c->chans[i].name));
		snprintf(k, sizeof(k), "hy:c:{%s}", c->chans[i].name);
		struct redis_req *q = cmd_req(c, parse_channel_members, "ZCARD", k, NULL, NULL);
		redis_req_tag(q, (int)i);
		redis_req_then(q);
	}
	return STORE_DONE;
}

static void
redis_channel_list(struct store_state *s, struct store_call *c)
{
	char start[HY_CHANNEL_MAX + 2];
	struct redis_req *q[2];

	snprintf(start, sizeof(start), "%s%s", c->after[0] != '\0' ? "(" : "-", c->after);
	q[0] = cmd_req(c, parse_channel_count, "ZCARD", "hy:channels", NULL, NULL);
	q[1] = cmd_req(c, parse_channel_names, "ZRANGEBYLEX", "hy:channels", start, "+");
	redis_req_str(q[1], "LIMIT");
	redis_req_str(q[1], "0");
	redis_req_u64(q[1], c->limit + 1);
	redis_req_start_all(s, q, 2);
}

/* /stats: each presence bucket trimmed and counted with its sessions,
 * the channels, and each bucket of the user set, in one write. */

static enum store_result
parse_stats_bucket(struct store_call *c, const redisReply *r)
{
	c->total += (uint64_t)reply_int(reply_at(r, 0));
	c->sessions += (uint64_t)reply_int(reply_at(r, 1));
	return STORE_DONE;
}

static enum store_result
parse_stats_users(struct store_call *c, const redisReply *r)
{
	c->accounts += (uint64_t)reply_int(r);
	return STORE_DONE;
}

static void
redis_stats(struct store_state *s, struct store_call *c)
{
	struct redis_req *q[REDIS_PRESENCE_BUCKETS + 1 + REDIS_BUCKETS];
	char k[REDIS_KEY_MAX];
	size_t n = 0;

	c->total = c->sessions = c->accounts = 0;
	for (unsigned p = 0; p < REDIS_PRESENCE_BUCKETS; p++) {
		q[n] = redis_req_new(c, REDIS_PRESENCE_STATS, parse_stats_bucket);
		presence_keys(q[n++], p, 4);
	}
	q[n++] = cmd_req(c, parse_channel_count, "ZCARD", "hy:channels", NULL, NULL);
	for (unsigned b = 0; b < REDIS_BUCKETS; b++) {
		snprintf(k, sizeof(k), "hy:users:{%u}", b);
		q[n++] = cmd_req(c, parse_stats_users, "SCARD", k, NULL, NULL);
	}
	redis_req_start_all(s, q, n);
}

/* The mailbox. */

/* A mailbox's keys, in its owner's slot: hy:mb, hy:mq, hy:mc and, with
 * mid, hy:mid. */
static void
mailbox_keys(struct redis_req *q, const char *user, int mid)
{
	static const char *const keys[] = { "mb", "mq", "mc", "mid" };
	char k[REDIS_KEY_MAX];

	for (size_t i = 0; i < HY_ARRAY_LEN(keys) - (mid ? 0 : 1); i++) {
		snprintf(k, sizeof(k), "hy:%s:{%s}", keys[i], user);
		redis_req_key(q, k);
	}
}

/* A deposit: the sender's rate (its slot, taken first), the message in
 * the recipient's mailbox (the rate given back if the quota refuses it),
 * then its entry in the bucket's index of expiries. */

static struct redis_req *
rate_req(struct store_call *c, int script, redis_parse_fn parse)
{
	char k[REDIS_KEY_MAX];
	struct redis_req *q = redis_req_new(c, script, parse);

	snprintf(k, sizeof(k), "hy:rl:{%s}", c->sender);
	redis_req_key(q, k);
	redis_req_u64(q, c->rate_per_min);
	return q;
}

static enum store_result
parse_mail_added(struct store_call *c, const redisReply *r)
{
	long long id = reply_int(r);
	char k[REDIS_KEY_MAX], entry[HY_NAME_MAX + 24], at[24];

	if (id < 0) {
		if (c->rate_per_min > 0)
			redis_req_then(rate_req(c, REDIS_MAIL_REFUND, parse_any));
		return STORE_QUOTA;
	}
	c->mail_id = (uint64_t)id;
	snprintf(k, sizeof(k), "hy:mail:{%u}", redis_bucket(c->user));
	snprintf(entry, sizeof(entry), "%s %lld", c->user, id);
	snprintf(at, sizeof(at), "%llu", (unsigned long long)c->now_ms);
	redis_req_then(cmd_req(c, parse_any, "ZADD", k, at, entry));
	return STORE_DONE;
}

static struct redis_req *
mail_put_req(struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_MAIL_ADD, parse_mail_added);

	mailbox_keys(q, c->user, 1);
	redis_req_bin(q, c->blob, c->blob_len);
	redis_req_u64(q, c->now_ms);
	redis_req_u64(q, c->max_msgs);
	redis_req_u64(q, c->max_bytes);
	redis_req_u64(q, c->before_ms);
	return q;
}

static enum store_result
parse_mail_rate(struct store_call *c, const redisReply *r)
{
	long long v = reply_int(r);

	if (v < 0) {
		c->retry_s = (unsigned)(-v - 1);
		return STORE_RATED;
	}
	redis_req_then(mail_put_req(c));
	return STORE_DONE;
}

static void
redis_mail_add(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = c->rate_per_min > 0
	    ? rate_req(c, REDIS_MAIL_RATE, parse_mail_rate)
	    : mail_put_req(c);

	redis_req_replicated(q);
	redis_req_start(s, q);
}

/* {more, id, "TIME BLOB", ...} into c->mails. */
static enum store_result
parse_mail_list(struct store_call *c, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
		return STORE_DONE;
	c->more = reply_int(r->element[0]) != 0;
	size_t pairs = (r->elements - 1) / 2;
	c->mails = xcalloc(pairs > 0 ? pairs : 1, sizeof(*c->mails));
	for (size_t i = 0; i < pairs; i++) {
		const redisReply *v = r->element[2 + 2 * i];
		const char *sp = v->type == REDIS_REPLY_STRING ? memchr(v->str, ' ', v->len) : NULL;
		if (sp == NULL)
			continue;
		struct store_mail *m = &c->mails[c->n++];
		m->id = (uint64_t)reply_int(r->element[1 + 2 * i]);
		m->time_ms = strtoull(v->str, NULL, 10);
		m->len = v->len - (size_t)(sp + 1 - v->str);
		m->blob = xmalloc(m->len > 0 ? m->len : 1);
		memcpy(m->blob, sp + 1, m->len);
	}
	return STORE_DONE;
}

static void
redis_mail_list(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_MAIL_LIST, parse_mail_list);

	mailbox_keys(q, c->user, 0);
	redis_req_u64(q, c->after_id);
	redis_req_u64(q, c->limit);
	redis_req_u64(q, c->max_page_bytes);
	redis_req_u64(q, c->before_ms);
	redis_req_start(s, q);
}

/* The ids deleted from a mailbox: counted and, for mail_delete (tag 0),
 * taken out of the bucket's index (the sweep drops the entries it read
 * itself). */
static enum store_result
parse_mail_deleted(struct store_call *c, const redisReply *r)
{
	size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
	char k[REDIS_KEY_MAX], entry[HY_NAME_MAX + 24];

	c->deleted += n;
	if (n == 0 || redis_tag() != 0)
		return STORE_DONE;
	snprintf(k, sizeof(k), "hy:mail:{%u}", redis_bucket(c->user));
	struct redis_req *q = cmd_req(c, parse_any, "ZREM", k, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		snprintf(entry, sizeof(entry), "%s %.*s", c->user, (int)r->element[i]->len,
		    r->element[i]->str);
		redis_req_str(q, entry);
	}
	redis_req_then(q);
	return STORE_DONE;
}

/* A request deleting ids (text, separated by commas) from user's
 * mailbox. */
static struct redis_req *
mail_delete_req(struct store_call *c, const char *user, const char *ids, size_t len)
{
	struct redis_req *q = redis_req_new(c, REDIS_MAIL_DELETE, parse_mail_deleted);

	mailbox_keys(q, user, 0);
	redis_req_bin(q, ids, len);
	return q;
}

static void
redis_mail_delete(struct store_state *s, struct store_call *c)
{
	char *ids = xmalloc(c->nids * 21 + 1);
	size_t len = 0;

	ids[0] = '\0';
	for (size_t i = 0; i < c->nids; i++)
		len += (size_t)snprintf(
		    ids + len, 22, "%s%llu", i > 0 ? "," : "", (unsigned long long)c->ids[i]);
	c->deleted = 0;
	struct redis_req *q = mail_delete_req(c, c->user, ids, len);
	free(ids);
	redis_req_start(s, q);
}

/* The sweep: each bucket's index read for the messages due (up to
 * MAIL_SWEEP_PER_BUCKET a bucket), each deleted from its mailbox (tag 1:
 * not c->user's), and the entries dropped from the index. */

#define MAIL_SWEEP_PER_BUCKET 16 /* 1,024 a sweep in all */

static enum store_result
parse_mail_due(struct store_call *c, const redisReply *r)
{
	size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
	char k[REDIS_KEY_MAX], user[HY_NAME_MAX + 1];

	if (n == 0)
		return STORE_DONE;
	snprintf(k, sizeof(k), "hy:mail:{%d}", redis_tag());
	struct redis_req *drop = cmd_req(c, parse_any, "ZREM", k, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_STRING)
			continue;
		redis_req_bin(drop, e->str, e->len);
		const char *sp = memchr(e->str, ' ', e->len);
		if (sp == NULL)
			continue;
		size_t nlen = (size_t)(sp - e->str);
		if (!hy_name_valid(e->str, nlen))
			continue;
		memcpy(user, e->str, nlen);
		user[nlen] = '\0';
		struct redis_req *q =
		    mail_delete_req(c, user, sp + 1, e->len - nlen - 1);
		redis_req_tag(q, 1);
		redis_req_then(q);
	}
	redis_req_then(drop);
	return STORE_DONE;
}

static void
redis_mail_expire(struct store_state *s, struct store_call *c)
{
	struct redis_req *q[REDIS_BUCKETS];
	char k[REDIS_KEY_MAX], before[24];

	c->deleted = 0;
	snprintf(before, sizeof(before), "(%llu", (unsigned long long)c->before_ms);
	for (unsigned b = 0; b < REDIS_BUCKETS; b++) {
		snprintf(k, sizeof(k), "hy:mail:{%u}", b);
		q[b] = cmd_req(c, parse_mail_due, "ZRANGEBYSCORE", k, "-inf", before);
		redis_req_str(q[b], "LIMIT");
		redis_req_str(q[b], "0");
		redis_req_u64(q[b], MAIL_SWEEP_PER_BUCKET);
		redis_req_tag(q[b], (int)b);
	}
	redis_req_start_all(s, q, REDIS_BUCKETS);
}

/* Profiles. */

/* The profile as it now is, then copied into the details of the user
 * if online (another slot). */
static enum store_result
parse_profile(struct store_call *c, const redisReply *r)
{
	char k[REDIS_KEY_MAX];

	reply_str(reply_at(r, 0), c->info.display, sizeof(c->info.display));
	reply_str(reply_at(r, 1), c->info.status, sizeof(c->info.status));
	struct redis_req *q = redis_req_new(c, REDIS_PROFILE_COPY, parse_any);
	pkey(k, sizeof(k), "peer", redis_pbucket(c->user), "");
	redis_req_key(q, k);
	redis_req_str(q, c->user);
	redis_req_str(q, c->info.display);
	redis_req_str(q, c->info.status);
	redis_req_then(q);
	return STORE_DONE;
}

/* "=TEXT" sets the field, "-" keeps it. */
static void
profile_arg(struct redis_req *q, const char *v)
{
	char arg[STORE_STATUS_MAX + 2];

	snprintf(arg, sizeof(arg), "%s%s", v != NULL ? "=" : "-", v != NULL ? v : "");
	redis_req_str(q, arg);
}

static void
redis_profile_set(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_PROFILE_SET, parse_profile);
	char k[REDIS_KEY_MAX];

	snprintf(k, sizeof(k), "hy:p:{%s}", c->user);
	redis_req_key(q, k);
	profile_arg(q, c->display_in);
	profile_arg(q, c->status_in);
	redis_req_start(s, q);
}

/* NAT hints. */

/* The sender's budget spent (its slot), then the hint queued (the
 * user's). */
static enum store_result
parse_hint_budget(struct store_call *c, const redisReply *r)
{
	char k[REDIS_KEY_MAX];

	if (reply_int(r) <= 0)
		return STORE_RATED;
	struct redis_req *q = redis_req_new(c, REDIS_HINT_ADD, parse_any);
	snprintf(k, sizeof(k), "hy:h:{%s}", c->user);
	redis_req_key(q, k);
	redis_req_str(q, c->hint_in);
	redis_req_u64(q, c->ttl_ms);
	redis_req_u64(q, STORE_HINTS_PER_USER);
	redis_req_then(q);
	return STORE_DONE;
}

static void
redis_hint_add(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_HINT_BUDGET, parse_hint_budget);
	char k[REDIS_KEY_MAX];

	snprintf(k, sizeof(k), "hy:rdv:{%s}", c->sender);
	redis_req_key(q, k);
	redis_req_u64(q, STORE_RDV_BURST);
	redis_req_u64(q, STORE_RDV_PER_S);
	redis_req_start(s, q);
}

static enum store_result
parse_hints(struct store_call *c, const redisReply *r)
{
	size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;

	c->hints = xcalloc(n > 0 ? n : 1, sizeof(*c->hints));
	c->n = 0;
	for (size_t i = 0; i < n; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    r->element[i]->len < sizeof(c->hints[0]))
			reply_str(r->element[i], c->hints[c->n++], sizeof(c->hints[0]));
	return STORE_DONE;
}

static void
redis_hint_take(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_HINT_TAKE, parse_hints);
	char k[REDIS_KEY_MAX];

	snprintf(k, sizeof(k), "hy:h:{%s}", c->user);
	redis_req_key(q, k);
	redis_req_start(s, q);
}

const struct store_state_ops redis_state_ops = {
	.attach = redis_attach,
	.detach = redis_detach,
	.close = redis_close,
	.sweep = NULL, /* readers trim */
	.account_add = redis_account_add,
	.account_hash = redis_account_hash,
	.token_issue = redis_token_issue,
	.token_user = redis_token_user,
	.token_revoke = redis_token_revoke,
	.peer_submit = redis_peer_submit,
	.peer_renew = redis_peer_renew,
	.peer_beat = redis_peer_beat,
	.peer_list = redis_peer_list,
	.peer_info = redis_peer_info,
	.channel_join = redis_channel_join,
	.channel_leave = redis_channel_leave,
	.channel_list = redis_channel_list,
	.stats = redis_stats,
	.mail_add = redis_mail_add,
	.mail_list = redis_mail_list,
	.mail_delete = redis_mail_delete,
	.mail_expire = redis_mail_expire,
	.profile_set = redis_profile_set,
	.hint_add = redis_hint_add,
	.hint_take = redis_hint_take,
};
