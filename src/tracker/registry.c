/* registry.c — the tracker's online state: users in a chained hash table,
 * channels as arrays of members sorted by name, tokens in a second table.
 *
 * A user record is created the first time a name is seen (a login, a
 * membership loaded from the store) and lives as long as the registry, so
 * channel arrays can point at it; only authenticated names get one, which
 * bounds them by the accounts. Expiry is checked on every read, so the
 * sweeper only reclaims and counts; it walks a slice of buckets per call
 * and never pauses the loop for the whole table.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/registry.h"
#include "hychat/util.h"

#define REG_INITIAL_BUCKETS 64
#define REG_INITIAL_LIST 4

_Static_assert(REG_TOKEN_TEXT_SIZE ==
        sodium_base64_ENCODED_LEN(REG_TOKEN_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
    "REG_TOKEN_TEXT_SIZE must fit the base64url form of a token");
_Static_assert(REG_PUBKEY_TEXT_SIZE ==
        sodium_base64_ENCODED_LEN(REG_PUBKEY_MAX, sodium_base64_VARIANT_ORIGINAL),
    "REG_PUBKEY_TEXT_SIZE must fit the base64 form of a key");

struct reg_link {
	struct reg_link *next;
	uint64_t hash;
};

struct reg_table {
	struct reg_link **b;
	size_t mask;
	size_t n;
	size_t cursor; /* the sweeper's next bucket */
};

struct reg_token;

/* Kept small: one per online peer, and the bound of the memory budget. */
struct reg_user {
	struct reg_link link; /* must stay first */
	struct reg_token *tokens; /* newest first */
	uint64_t expires; /* online until; 0: offline */
	uint32_t peer_id;
	uint16_t port;
	uint8_t ntokens;
	uint8_t listed; /* in registry.all */
	uint32_t nchannels; /* channels the user is a member of */
	char name[HY_NAME_MAX + 1];
	char ip[REG_IP_MAX + 1];
	char pubkey[REG_PUBKEY_TEXT_SIZE]; /* base64; "" for none */
	/* Where its requests come from, and its IPv6 address beside ip
	 * ("" for none): what peers behind NAT are reached by. */
	char observed[REG_IP_MAX + 1];
	char ip6[REG_IP_MAX + 1];
};

struct reg_token {
	struct reg_link link; /* must stay first */
	struct reg_token *unext; /* the user's next older token */
	struct reg_user *user;
	uint64_t expires;
	uint8_t raw[REG_TOKEN_BYTES];
};

struct reg_list {
	struct reg_user **v;
	size_t n;
	size_t cap;
};

struct reg_channel {
	struct reg_list members;
	char name[HY_CHANNEL_MAX + 1];
};

struct registry {
	uint8_t key[crypto_shorthash_KEYBYTES];
	struct reg_table users;
	struct reg_table tokens;
	struct reg_list all; /* every user that was ever online */
	struct reg_channel **channels; /* sorted by name */
	size_t nchannels;
	size_t capchannels;
	size_t online;
	uint32_t next_peer_id;
};

static uint64_t
reg_hash(const struct registry *r, const void *p, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, p, len, r->key);
	memcpy(&h, out, sizeof(h));
	return h;
}

/* Hash tables: chains through reg_link, doubled at a load factor of 1. */

static void
table_init(struct reg_table *t)
{
	t->b = xcalloc(REG_INITIAL_BUCKETS, sizeof(*t->b));
	t->mask = REG_INITIAL_BUCKETS - 1;
	t->n = 0;
	t->cursor = 0;
}

static void
table_grow(struct reg_table *t)
{
	size_t size = (t->mask + 1) * 2;
	struct reg_link **b = xcalloc(size, sizeof(*b));

	for (size_t i = 0; i <= t->mask; i++) {
		struct reg_link *l = t->b[i], *next;
		for (; l != NULL; l = next) {
			next = l->next;
			l->next = b[l->hash & (size - 1)];
			b[l->hash & (size - 1)] = l;
		}
	}
	free(t->b);
	t->b = b;
	t->mask = size - 1;
	t->cursor = 0;
}

static void
table_insert(struct reg_table *t, struct reg_link *l)
{
	if (t->n > t->mask)
		table_grow(t);
	l->next = t->b[l->hash & t->mask];
	t->b[l->hash & t->mask] = l;
	t->n++;
}

static void
table_remove(struct reg_table *t, struct reg_link *l)
{
	struct reg_link **pp = &t->b[l->hash & t->mask];

	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	t->n--;
}

/* Sorted lists of users. */

/* The first index whose name is >= name (> name with upper). */
static size_t
list_bound(const struct reg_list *l, const char *name, int upper)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid]->name, name);
		if (c < 0 || (upper && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
list_insert(struct reg_list *l, struct reg_user *u)
{
	size_t i = l->n;

	if (l->n > 0 && strcmp(l->v[l->n - 1]->name, u->name) >= 0) {
		i = list_bound(l, u->name, 0);
		if (l->v[i] == u)
			return 0;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : REG_INITIAL_LIST;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof(*l->v));
	l->v[i] = u;
	l->n++;
	return 1;
}

static int
list_remove(struct reg_list *l, const struct reg_user *u)
{
	size_t i = list_bound(l, u->name, 0);

	if (i == l->n || l->v[i] != u)
		return -1;
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
	return 0;
}

static int
list_has(const struct reg_list *l, const struct reg_user *u)
{
	size_t i = list_bound(l, u->name, 0);

	return i < l->n && l->v[i] == u;
}

/* Users. */

static struct reg_user *
user_find(const struct registry *r, const char *name)
{
	uint64_t h = reg_hash(r, name, strlen(name));

	for (struct reg_link *l = r->users.b[h & r->users.mask]; l != NULL; l = l->next) {
		struct reg_user *u = (struct reg_user *)l;
		if (l->hash == h && strcmp(u->name, name) == 0)
			return u;
	}
	return NULL;
}

static struct reg_user *
user_get(struct registry *r, const char *name)
{
	struct reg_user *u = user_find(r, name);
	size_t len = strnlen(name, HY_NAME_MAX);

	if (u != NULL)
		return u;
	u = xcalloc(1, sizeof(*u));
	memcpy(u->name, name, len);
	u->link.hash = reg_hash(r, u->name, len);
	table_insert(&r->users, &u->link);
	return u;
}

struct registry *
registry_new(void)
{
	struct registry *r = xcalloc(1, sizeof(*r));

	crypto_shorthash_keygen(r->key);
	table_init(&r->users);
	table_init(&r->tokens);
	r->next_peer_id = 1;
	return r;
}

void
registry_free(struct registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i <= r->tokens.mask; i++) {
		struct reg_link *l = r->tokens.b[i], *next;
		for (; l != NULL; l = next) {
			next = l->next;
			free(l);
		}
	}
	for (size_t i = 0; i <= r->users.mask; i++) {
		struct reg_link *l = r->users.b[i], *next;
		for (; l != NULL; l = next) {
			next = l->next;
			free(l);
		}
	}
	for (size_t i = 0; i < r->nchannels; i++) {
		free(r->channels[i]->members.v);
		free(r->channels[i]);
	}
	free(r->channels);
	free(r->all.v);
	free(r->tokens.b);
	free(r->users.b);
	free(r);
}

/* Peers. */

static int
user_online(const struct reg_user *u, uint64_t now)
{
	return u->expires > now;
}

uint32_t
registry_peer_set(
    struct registry *r, const char *user, const char *ip, unsigned port, uint64_t expires)
{
	struct reg_user *u = user_get(r, user);
	size_t len = strnlen(ip, REG_IP_MAX);

	if (u->expires == 0)
		r->online++;
	u->expires = expires;
	memcpy(u->ip, ip, len);
	u->ip[len] = '\0';
	u->port = (uint16_t)port;
	if (u->peer_id == 0)
		u->peer_id = r->next_peer_id++;
	if (!u->listed) {
		list_insert(&r->all, u);
		u->listed = 1;
	}
	return u->peer_id;
}

void
registry_peer_nat(struct registry *r, const char *user, const char *observed, const char *ip6)
{
	struct reg_user *u = user_get(r, user);

	snprintf(u->observed, sizeof(u->observed), "%s", observed);
	snprintf(u->ip6, sizeof(u->ip6), "%s", ip6);
}

int
registry_peer_renew(struct registry *r, const char *user, uint64_t now, uint64_t expires)
{
	struct reg_user *u = user_find(r, user);

	if (u == NULL || !user_online(u, now))
		return -1;
	u->expires = expires;
	return 0;
}

static void
user_offline(struct registry *r, struct reg_user *u)
{
	if (u->expires == 0)
		return;
	u->expires = 0;
	r->online--;
}

void
registry_peer_drop(struct registry *r, const char *user)
{
	struct reg_user *u = user_find(r, user);

	if (u != NULL)
		user_offline(r, u);
}

int
registry_peer_online(const struct registry *r, const char *user, uint64_t now)
{
	const struct reg_user *u = user_find(r, user);

	return u != NULL && user_online(u, now);
}

int
registry_user_info(
    const struct registry *r, const char *user, uint64_t now, struct registry_user_info *out)
{
	const struct reg_user *u = user_find(r, user);

	memset(out, 0, sizeof(*out));
	if (u == NULL)
		return -1;
	memcpy(out->pubkey, u->pubkey, sizeof(out->pubkey));
	if (!user_online(u, now))
		return 0;
	memcpy(out->ip, u->ip, sizeof(out->ip));
	memcpy(out->observed, u->observed, sizeof(out->observed));
	memcpy(out->ip6, u->ip6, sizeof(out->ip6));
	out->port = u->port;
	return 1;
}

size_t
registry_online(const struct registry *r)
{
	return r->online;
}

static void
pubkey_text(const uint8_t *key, size_t len, char out[REG_PUBKEY_TEXT_SIZE])
{
	out[0] = '\0';
	if (len > 0 && len <= REG_PUBKEY_MAX)
		sodium_bin2base64(
		    out, REG_PUBKEY_TEXT_SIZE, key, len, sodium_base64_VARIANT_ORIGINAL);
}

int
registry_pubkey_differs(const struct registry *r, const char *user, const uint8_t *key, size_t len)
{
	const struct reg_user *u = user_find(r, user);
	char text[REG_PUBKEY_TEXT_SIZE];

	pubkey_text(key, len, text);
	return u == NULL || strcmp(u->pubkey, text) != 0;
}

void
registry_pubkey_set(struct registry *r, const char *user, const uint8_t *key, size_t len)
{
	pubkey_text(key, len, user_get(r, user)->pubkey);
}

/* Channels. */

static struct reg_channel *
channel_find(const struct registry *r, const char *name, size_t *pos)
{
	size_t lo = 0, hi = r->nchannels;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->channels[mid]->name, name);
		if (c == 0) {
			if (pos != NULL)
				*pos = mid;
			return r->channels[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos != NULL)
		*pos = lo;
	return NULL;
}

int
registry_join(struct registry *r, const char *channel, const char *user)
{
	size_t pos;
	struct reg_channel *ch = channel_find(r, channel, &pos);

	if (ch == NULL) {
		size_t len = strnlen(channel, HY_CHANNEL_MAX);
		ch = xcalloc(1, sizeof(*ch));
		memcpy(ch->name, channel, len);
		if (r->nchannels == r->capchannels) {
			r->capchannels = r->capchannels ? r->capchannels * 2 : REG_INITIAL_LIST;
			r->channels = xrealloc(r->channels, r->capchannels * sizeof(*r->channels));
		}
		memmove(&r->channels[pos + 1], &r->channels[pos],
		    (r->nchannels - pos) * sizeof(*r->channels));
		r->channels[pos] = ch;
		r->nchannels++;
	}
	struct reg_user *u = user_get(r, user);
	int added = list_insert(&ch->members, u);
	u->nchannels += (uint32_t)added;
	return added;
}

int
registry_leave(struct registry *r, const char *channel, const char *user)
{
	size_t pos;
	struct reg_channel *ch = channel_find(r, channel, &pos);
	struct reg_user *u = user_find(r, user);

	if (ch == NULL || u == NULL || list_remove(&ch->members, u) < 0)
		return -1;
	u->nchannels--;
	if (ch->members.n == 0) {
		free(ch->members.v);
		free(ch);
		memmove(&r->channels[pos], &r->channels[pos + 1],
		    (r->nchannels - pos - 1) * sizeof(*r->channels));
		r->nchannels--;
	}
	return 0;
}

int
registry_is_member(const struct registry *r, const char *channel, const char *user)
{
	const struct reg_channel *ch = channel_find(r, channel, NULL);
	const struct reg_user *u = user_find(r, user);

	return ch != NULL && u != NULL && list_has(&ch->members, u);
}

size_t
registry_channel_count(const struct registry *r)
{
	return r->nchannels;
}

size_t
registry_user_channels(const struct registry *r, const char *user)
{
	const struct reg_user *u = user_find(r, user);

	return u != NULL ? u->nchannels : 0;
}

int
registry_channel_exists(const struct registry *r, const char *channel)
{
	return channel_find(r, channel, NULL) != NULL;
}

size_t
registry_channels(const struct registry *r, const char *after, size_t limit,
    void (*fn)(const char *name, size_t members, void *arg), void *arg, int *more)
{
	size_t i = 0, n = 0;

	if (after != NULL && channel_find(r, after, &i) != NULL)
		i++;
	for (; i < r->nchannels && n < limit; i++, n++)
		fn(r->channels[i]->name, r->channels[i]->members.n, arg);
	*more = i < r->nchannels;
	return n;
}

long
registry_members(const struct registry *r, const char *channel, size_t limit,
    void (*fn)(const char *name, void *arg), void *arg)
{
	const struct reg_channel *ch = channel_find(r, channel, NULL);

	if (ch == NULL)
		return -1;
	for (size_t i = 0; i < ch->members.n && i < limit; i++)
		fn(ch->members.v[i]->name, arg);
	return (long)ch->members.n;
}

static long
list_peers(const struct registry *r, const char *channel, const char *after, size_t limit,
    uint64_t now, int offline_too, registry_peer_fn fn, void *arg, int *more)
{
	const struct reg_list *l = &r->all;
	long count = 0;

	*more = 0;
	if (channel != NULL) {
		const struct reg_channel *ch = channel_find(r, channel, NULL);
		if (ch == NULL)
			return -1;
		l = &ch->members;
	}
	for (size_t i = after != NULL ? list_bound(l, after, 1) : 0; i < l->n; i++) {
		const struct reg_user *u = l->v[i];
		int online = user_online(u, now);
		if (!online && !offline_too)
			continue;
		if ((size_t)count == limit) {
			*more = 1;
			break;
		}
		struct registry_peer p = {
			.name = u->name,
			.ip = online ? u->ip : "",
			.port = online ? u->port : 0,
			.peer_id = u->peer_id,
			.pubkey = u->pubkey[0] ? u->pubkey : NULL,
			.observed = online ? u->observed : "",
			.ip6 = online ? u->ip6 : "",
			.online = online,
		};
		fn(&p, arg);
		count++;
	}
	return count;
}

long
registry_list(const struct registry *r, const char *channel, const char *after, size_t limit,
    uint64_t now, registry_peer_fn fn, void *arg, int *more)
{
	return list_peers(r, channel, after, limit, now, 0, fn, arg, more);
}

long
registry_list_members(const struct registry *r, const char *channel, const char *after,
    size_t limit, uint64_t now, registry_peer_fn fn, void *arg, int *more)
{
	if (channel == NULL)
		return -1;
	return list_peers(r, channel, after, limit, now, 1, fn, arg, more);
}

/* Tokens. */

static int
token_decode(const char *text, size_t len, uint8_t raw[REG_TOKEN_BYTES])
{
	size_t n;

	if (len != REG_TOKEN_TEXT_SIZE - 1)
		return -1;
	if (sodium_base642bin(raw, REG_TOKEN_BYTES, text, len, NULL, &n, NULL,
	        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != REG_TOKEN_BYTES)
		return -1;
	return 0;
}

static struct reg_token *
token_find(const struct registry *r, const char *text, size_t len, uint64_t now)
{
	uint8_t raw[REG_TOKEN_BYTES];
	struct reg_token *found = NULL;

	if (token_decode(text, len, raw) < 0)
		return NULL;
	uint64_t h = reg_hash(r, raw, sizeof(raw));
	for (struct reg_link *l = r->tokens.b[h & r->tokens.mask]; l != NULL; l = l->next) {
		struct reg_token *t = (struct reg_token *)l;
		if (hy_memeq_ct(t->raw, raw, sizeof(raw)))
			found = t;
	}
	sodium_memzero(raw, sizeof(raw));
	if (found == NULL || found->expires <= now)
		return NULL;
	return found;
}

static void
token_free(struct registry *r, struct reg_token *t)
{
	struct reg_token **pp = &t->user->tokens;

	while (*pp != t)
		pp = &(*pp)->unext;
	*pp = t->unext;
	t->user->ntokens--;
	table_remove(&r->tokens, &t->link);
	sodium_memzero(t->raw, sizeof(t->raw));
	free(t);
}

void
registry_token_issue(
    struct registry *r, const char *user, uint64_t expires, char out[REG_TOKEN_TEXT_SIZE])
{
	struct reg_user *u = user_get(r, user);
	struct reg_token *t = xcalloc(1, sizeof(*t));

	if (u->ntokens == REG_MAX_TOKENS) {
		struct reg_token *oldest = u->tokens;
		while (oldest->unext != NULL)
			oldest = oldest->unext;
		token_free(r, oldest);
	}
	randombytes_buf(t->raw, sizeof(t->raw));
	t->user = u;
	t->expires = expires;
	t->link.hash = reg_hash(r, t->raw, sizeof(t->raw));
	table_insert(&r->tokens, &t->link);
	t->unext = u->tokens;
	u->tokens = t;
	u->ntokens++;
	sodium_bin2base64(out, REG_TOKEN_TEXT_SIZE, t->raw, sizeof(t->raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

const char *
registry_token_user(const struct registry *r, const char *text, size_t len, uint64_t now)
{
	const struct reg_token *t = token_find(r, text, len, now);

	return t != NULL ? t->user->name : NULL;
}

int
registry_token_revoke(struct registry *r, const char *text, size_t len, uint64_t now)
{
	struct reg_token *t = token_find(r, text, len, now);

	if (t == NULL)
		return -1;
	token_free(r, t);
	return 0;
}

size_t
registry_token_count(const struct registry *r)
{
	return r->tokens.n;
}

/* The sweeper. */

static size_t
sweep_users(struct registry *r, uint64_t now, size_t slice)
{
	struct reg_table *t = &r->users;
	size_t removed = 0;

	for (size_t i = 0; i < slice && i <= t->mask; i++) {
		for (struct reg_link *l = t->b[t->cursor]; l != NULL; l = l->next) {
			struct reg_user *u = (struct reg_user *)l;
			if (u->expires != 0 && u->expires <= now) {
				user_offline(r, u);
				removed++;
			}
		}
		t->cursor = (t->cursor + 1) & t->mask;
	}
	return removed;
}

static size_t
sweep_tokens(struct registry *r, uint64_t now, size_t slice)
{
	struct reg_table *t = &r->tokens;
	size_t removed = 0;

	for (size_t i = 0; i < slice && i <= t->mask; i++) {
		struct reg_link *l = t->b[t->cursor], *next;
		for (; l != NULL; l = next) {
			next = l->next;
			if (((struct reg_token *)l)->expires <= now) {
				token_free(r, (struct reg_token *)l);
				removed++;
			}
		}
		t->cursor = (t->cursor + 1) & t->mask;
	}
	return removed;
}

size_t
registry_sweep(struct registry *r, uint64_t now, size_t slice)
{
	return sweep_users(r, now, slice) + sweep_tokens(r, now, slice);
}
