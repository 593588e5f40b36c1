/* store_redis_ops.c — the Redis store's operations on accounts, tokens,
 * the heartbeat, profiles and NAT hints, the helpers every operation's
 * file shares, and the table of them all: for each, the commands or
 * scripts it sends (store_redis_lua.c), each on one slot, and how the
 * replies fill the call. Registration and channels are
 * store_redis_peers.c's, listings store_redis_list.c's, the mailbox
 * store_redis_mail.c's; the connections and the sending store_redis.c's. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/store.h"
#include "hychat/util.h"
#include "store_redis.h"
#include "store_redis_lua.h"

#define REDIS_TOKEN_ID_BYTES 16 /* the hash of a token that names its key */

/* Replies. */

long long
redis_reply_int(const redisReply *r)
{
	if (r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

const redisReply *
redis_reply_at(const redisReply *r, size_t i)
{
	return r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

void
redis_reply_str(const redisReply *r, char *out, size_t outsz)
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
void
redis_peer_details(const redisReply *r, struct store_peer *p)
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
	return redis_reply_int(r) != 0 ? STORE_DONE : if_zero;
}

/* A count of mailbox messages that came with another answer. */
void
redis_mail_known(struct store_call *c, const redisReply *r)
{
	if (r == NULL || r->type != REDIS_REPLY_INTEGER)
		return;
	c->mail = (uint64_t)redis_reply_int(r);
	c->mail_known = 1;
}

/* A reply that fills nothing. */
enum store_result
redis_parse_any(struct store_call *c, const redisReply *r)
{
	(void)c;
	(void)r;
	return STORE_DONE;
}

/* A plain command on one key and then a word or two (NULL: none). */
struct redis_req *
redis_cmd(struct store_call *c, redis_parse_fn parse, const char *cmd, const char *key,
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

/* Requests for presence bucket p's keys (of KEYS, the first nkeys of
 * online, names, peer, sessions). */
void
redis_presence_keys(struct redis_req *q, unsigned p, size_t nkeys)
{
	static const char *const keys[] = { "online", "names", "peer", "sessions" };
	char k[REDIS_KEY_MAX];

	for (size_t i = 0; i < nkeys && i < HY_ARRAY_LEN(keys); i++) {
		redis_pkey(k, sizeof(k), keys[i], p, "");
		redis_req_key(q, k);
	}
}

/* Accounts. */

static enum store_result
parse_added(struct store_call *c, const redisReply *r)
{
	return flag(r, STORE_TAKEN);
}

/* The account, and its name in its bucket's set (for /stats) in the same
 * write: a name already there (taken) is no change. */
static void
redis_account_add(struct store_state *s, struct store_call *c)
{
	char k[REDIS_KEY_MAX];
	struct redis_req *q[2] = { redis_req_new(c, REDIS_ACCOUNT_ADD, parse_added),
		redis_req_new(c, -1, redis_parse_any) };

	redis_key(k, sizeof(k), "u", c->user);
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

void
redis_key(char *out, size_t outsz, const char *k, const char *tag)
{
	snprintf(out, outsz, "hy:%s:{%s}", k, tag);
}

static void
redis_account_hash(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, -1, parse_hash);
	char key[REDIS_KEY_MAX];

	redis_key(key, sizeof(key), "u", c->user);
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

/* Fills t from a token's text; -1 if it could not be a token at all
 * (which spares Redis the rest). */
static int
token_parse(const char *text, size_t len, struct redis_token_ref *t)
{
	const char *sep = memchr(text, REDIS_TOKEN_SEP, len);

	if (sep == NULL)
		return -1;
	size_t nlen = (size_t)(sep - text);
	if (len - nlen - 1 != REG_TOKEN_TEXT_SIZE - 1 || !hy_name_valid(text, nlen))
		return -1;
	memcpy(t->user, text, nlen);
	t->user[nlen] = '\0';
	t->pbucket = redis_pbucket(t->user);
	unsigned char h[REDIS_TOKEN_ID_BYTES];
	crypto_generichash(h, sizeof(h), (const unsigned char *)text, len, NULL, 0);
	sodium_bin2base64(
	    t->id, sizeof(t->id), h, sizeof(h), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(t->key, sizeof(t->key), "hy:t:{%u}:%s", t->pbucket, t->id);
	return 0;
}

int
redis_token_ref(const struct store_call *c, struct redis_token_ref *t)
{
	return token_parse(c->token_in, c->token_len, t);
}

/* The key of presence bucket p's k ("online", "names", "peer", "ut:NAME"
 * with its suffix...): hy:K:{P}, then suffix. */
void
redis_pkey(char *out, size_t outsz, const char *k, unsigned p, const char *suffix)
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

	redis_key(key, sizeof(key), "mc", user);
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
	struct redis_token_ref t;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(
	    text, sizeof(text), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	snprintf(c->token, sizeof(c->token), "%s%c%s", c->user, REDIS_TOKEN_SEP, text);
	sodium_memzero(text, sizeof(text));
	if (token_parse(c->token, strlen(c->token), &t) < 0) {
		store_call_finish(c, STORE_FAILED, "redis: a token for an invalid name");
		return;
	}
	struct redis_req *q[2] = { redis_req_new(c, REDIS_TOKEN_ISSUE, redis_parse_any),
		mailcount_req(c, c->user) };
	snprintf(suffix, sizeof(suffix), ":%s", c->user);
	redis_req_key(q[0], t.key);
	redis_pkey(k, sizeof(k), "ut", t.pbucket, suffix);
	redis_req_key(q[0], k);
	redis_pkey(k, sizeof(k), "sessions", t.pbucket, "");
	redis_req_key(q[0], k);
	redis_req_str(q[0], c->user);
	redis_req_str(q[0], t.id);
	redis_req_u64(q[0], c->ttl_ms);
	redis_req_u64(q[0], REG_MAX_TOKENS);
	redis_pkey(k, sizeof(k), "t", t.pbucket, ":");
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
	struct redis_token_ref t;

	if (redis_token_ref(c, &t) < 0) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	struct redis_req *q = redis_req_new(c, -1, parse_token_user);
	redis_req_str(q, "GET");
	redis_req_str(q, t.key);
	redis_req_start(s, q);
}

/* Revoked: the user's NAT hints were for the session that ended, and
 * go too (another slot, so a step of their own). */
static enum store_result
parse_revoked(struct store_call *c, const redisReply *r)
{
	char k[REDIS_KEY_MAX];

	if (redis_reply_int(r) == 0)
		return STORE_MISSING;
	redis_key(k, sizeof(k), "h", c->user);
	redis_req_then(redis_cmd(c, redis_parse_any, "DEL", k, NULL, NULL));
	return STORE_DONE;
}

static void
redis_token_revoke(struct store_state *s, struct store_call *c)
{
	static const char *const keys[] = { "sessions", "online", "names", "peer" };
	char k[REDIS_KEY_MAX], suffix[HY_NAME_MAX + 2];
	struct redis_token_ref t;

	if (redis_token_ref(c, &t) < 0) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	struct redis_req *q = redis_req_new(c, REDIS_TOKEN_REVOKE, parse_revoked);
	redis_req_key(q, t.key);
	snprintf(suffix, sizeof(suffix), ":%s", t.user);
	redis_pkey(k, sizeof(k), "ut", t.pbucket, suffix);
	redis_req_key(q, k);
	for (size_t i = 0; i < HY_ARRAY_LEN(keys); i++) {
		redis_pkey(k, sizeof(k), keys[i], t.pbucket, "");
		redis_req_key(q, k);
	}
	redis_req_str(q, t.user);
	redis_req_str(q, t.id);
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

	redis_pkey(k, sizeof(k), "online", redis_pbucket(c->user), "");
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
	long long v = redis_reply_int(r->type == REDIS_REPLY_ARRAY ? redis_reply_at(r, 0) : r);

	if (v == 1) {
		const redisReply *user = redis_reply_at(r, 1);
		if (user != NULL && user->type == REDIS_REPLY_STRING && user->len > 0 &&
		    user->len <= HY_NAME_MAX)
			redis_reply_str(user, c->user, sizeof(c->user));
	}
	return v >= -2 && v <= 1 ? results[v + 2] : STORE_FAILED;
}

/* The token checked and the presence renewed in the token's slot, and,
 * in the same write, the mail count of the user the token names (read
 * for nothing if the token is bad). */
static void
redis_peer_beat(struct store_state *s, struct store_call *c)
{
	struct redis_token_ref t;
	char k[REDIS_KEY_MAX];

	if (redis_token_ref(c, &t) < 0) {
		store_call_finish(c, STORE_BAD_TOKEN, NULL);
		return;
	}
	struct redis_req *q[2] = { redis_req_new(c, REDIS_PEER_BEAT, parse_beat),
		mailcount_req(c, t.user) };
	redis_req_key(q[0], t.key);
	redis_pkey(k, sizeof(k), "online", t.pbucket, "");
	redis_req_key(q[0], k);
	redis_req_str(q[0], t.user);
	redis_req_str(q[0], c->user);
	redis_req_u64(q[0], c->ttl_ms);
	redis_req_start_all(s, q, 2);
}

/* Profiles. */

/* The profile as it now is, then copied into the details of the user
 * if online (another slot). */
static enum store_result
parse_profile(struct store_call *c, const redisReply *r)
{
	char k[REDIS_KEY_MAX];

	redis_reply_str(redis_reply_at(r, 0), c->info.display, sizeof(c->info.display));
	redis_reply_str(redis_reply_at(r, 1), c->info.status, sizeof(c->info.status));
	struct redis_req *q = redis_req_new(c, REDIS_PROFILE_COPY, redis_parse_any);
	redis_pkey(k, sizeof(k), "peer", redis_pbucket(c->user), "");
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

	redis_key(k, sizeof(k), "p", c->user);
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

	if (redis_reply_int(r) <= 0)
		return STORE_RATED;
	struct redis_req *q = redis_req_new(c, REDIS_HINT_ADD, redis_parse_any);
	redis_key(k, sizeof(k), "h", c->user);
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

	redis_key(k, sizeof(k), "rdv", c->sender);
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
			redis_reply_str(r->element[i], c->hints[c->n++], sizeof(c->hints[0]));
	return STORE_DONE;
}

static void
redis_hint_take(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_HINT_TAKE, parse_hints);
	char k[REDIS_KEY_MAX];

	redis_key(k, sizeof(k), "h", c->user);
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
