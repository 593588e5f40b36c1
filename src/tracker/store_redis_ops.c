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

#define LIST_ENTRY_SEP '\x1e' /* between peers in a listing's reply */
#define LIST_NAME_SEP '\x1f' /* between a peer's name and details */

/* One peer of a listing, "NAME\x1fDETAILS" (details "! KEY..." for an
 * offline member), into p; 0 if it is not one. */
static int
list_entry(const char *s, size_t len, struct store_peer *p)
{
	const char *sep = memchr(s, LIST_NAME_SEP, len);
	redisReply d = { .type = REDIS_REPLY_STRING };

	if (sep == NULL || sep == s || (size_t)(sep - s) > HY_NAME_MAX)
		return 0;
	memset(p, 0, sizeof(*p));
	memcpy(p->name, s, (size_t)(sep - s));
	d.str = (char *)sep + 1;
	d.len = len - (size_t)(sep + 1 - s);
	/* "! KEY": an offline member (members=all), no address. */
	p->online = !(d.len >= 2 && d.str[0] == '!');
	peer_details(&d, p); /* the profile, and for one online the rest */
	if (!p->online) {
		const char *nl = memchr(d.str, '\n', d.len);
		size_t keylen = (nl != NULL ? (size_t)(nl - d.str) : d.len) - 2;
		snprintf(p->pubkey, sizeof(p->pubkey), "%.*s", (int)keylen, d.str + 2);
		p->ip[0] = p->observed[0] = p->ip6[0] = '\0';
		p->port = 0;
	}
	return p->online ? p->ip[0] != '\0' : 1;
}

static enum store_result
parse_list(struct store_call *c, const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer == -2 ? STORE_BAD_TOKEN : STORE_MISSING;
	const redisReply *out = reply_at(r, 1);
	const redisReply *me = reply_at(r, 2);
	if (c->with_token) {
		if (me == NULL || me->type != REDIS_REPLY_STRING || me->len == 0 ||
		    me->len > HY_NAME_MAX)
			return STORE_BAD_TOKEN;
		reply_str(me, c->user, sizeof(c->user));
	}
	c->more = reply_int(reply_at(r, 0)) != 0;
	const char *at = out != NULL && out->type == REDIS_REPLY_STRING ? out->str : "";
	const char *end = at + (out != NULL && out->type == REDIS_REPLY_STRING ? out->len : 0);
	size_t n = at < end ? 1 : 0;
	for (const char *x = at; x < end && (x = memchr(x, LIST_ENTRY_SEP, (size_t)(end - x))); x++)
		n++;
	c->peers = xcalloc(n > 0 ? n : 1, sizeof(*c->peers));
	c->n = 0;
	while (at < end) {
		const char *stop = memchr(at, LIST_ENTRY_SEP, (size_t)(end - at));
		if (stop == NULL)
			stop = end;
		if (c->n < n && list_entry(at, (size_t)(stop - at), &c->peers[c->n]))
			c->n++;
		at = stop + 1;
	}
	return STORE_DONE;
}

static void
redis_peer_list(struct store_state *s, struct store_call *c)
{
	struct token_ref t = { .key = "" };

	if (c->with_token && token_ref(c, &t) < 0) {
		store_call_finish(c, STORE_BAD_TOKEN, NULL);
		return;
	}
	struct redis_req *q = redis_req_new(c, REDIS_PEER_LIST, parse_list);
	redis_req_str(q, t.key);
	redis_req_str(q, c->channel);
	redis_req_str(q, c->after);
	redis_req_u64(q, c->limit);
	redis_req_str(q, c->all ? "1" : "0");
	redis_req_start(s, q);
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

static enum store_result
parse_mail_added(struct store_call *c, const redisReply *r)
{
	long long id = reply_int(r);

	if (id <= -2) {
		c->retry_s = (unsigned)(-id - 1);
		return STORE_RATED;
	}
	if (id < 0)
		return STORE_QUOTA;
	c->mail_id = (uint64_t)id;
	return STORE_DONE;
}

static void
redis_mail_add(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_MAIL_ADD, parse_mail_added);

	redis_req_str(q, c->user);
	redis_req_bin(q, c->blob, c->blob_len);
	redis_req_u64(q, c->now_ms);
	redis_req_u64(q, c->max_msgs);
	redis_req_u64(q, c->max_bytes);
	redis_req_u64(q, c->before_ms);
	redis_req_str(q, c->sender);
	redis_req_u64(q, c->rate_per_min);
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

	redis_req_str(q, c->user);
	redis_req_u64(q, c->after_id);
	redis_req_u64(q, c->limit);
	redis_req_u64(q, c->max_page_bytes);
	redis_req_u64(q, c->before_ms);
	redis_req_start(s, q);
}

static enum store_result
parse_mail_deleted(struct store_call *c, const redisReply *r)
{
	c->deleted = (uint64_t)reply_int(r);
	return STORE_DONE;
}

static void
redis_mail_delete(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_MAIL_DELETE, parse_mail_deleted);
	char *ids = xmalloc(c->nids * 21 + 1);
	size_t len = 0;

	ids[0] = '\0';
	for (size_t i = 0; i < c->nids; i++)
		len += (size_t)snprintf(
		    ids + len, 22, "%s%llu", i > 0 ? "," : "", (unsigned long long)c->ids[i]);
	redis_req_str(q, c->user);
	redis_req_bin(q, ids, len);
	free(ids);
	redis_req_start(s, q);
}

static void
redis_mail_expire(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_MAIL_EXPIRE, parse_mail_deleted);

	redis_req_u64(q, c->before_ms);
	redis_req_start(s, q);
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
