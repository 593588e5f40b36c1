/* store_redis_list.c — the Redis store's listings of peers: every peer
 * online, or a channel's members, a page at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/store.h"
#include "hychat/util.h"
#include "store_redis.h"
#include "store_redis_lua.h"

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
 * c->names holds the round's names, c->peers the page and, from
 * c->round_base (the page's length when the round began), the round's
 * entries, moved down into the page as they are kept: the page needs
 * room for a page and a round. c->pending counts a step's calls not yet
 * answered, c->round_n the round's names. */

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
	return &c->peers[c->round_base + i];
}

static void list_round(struct store_call *c);

/* Step 4. */
static void
list_round_end(struct store_call *c)
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
		if (&c->peers[c->n] != e)
			c->peers[c->n] = *e;
		c->n++;
	}
	if (c->round_n == 0 || (c->round_n < list_chunk(c) && !c->round_partial))
		return;
	snprintf(c->after, sizeof(c->after), "%s", c->names[c->round_n - 1]);
	list_round(c);
}

/* Step 3's answers: an offline member's key, then its profile. */
static enum store_result
parse_list_key(struct store_call *c, const redisReply *r)
{
	redis_reply_str(r, list_entry(c, (size_t)redis_tag())->pubkey, sizeof(c->peers[0].pubkey));
	if (--c->pending == 0)
		list_round_end(c);
	return STORE_DONE;
}

static enum store_result
parse_list_profile(struct store_call *c, const redisReply *r)
{
	struct store_peer *e = list_entry(c, (size_t)redis_tag());

	redis_reply_str(redis_reply_at(r, 0), e->display, sizeof(e->display));
	redis_reply_str(redis_reply_at(r, 1), e->status, sizeof(e->status));
	if (--c->pending == 0)
		list_round_end(c);
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
		const redisReply *d = redis_reply_at(r, j++);
		struct store_peer *e = list_entry(c, i);
		memset(e, 0, sizeof(*e));
		e->online = d != NULL && d->type == REDIS_REPLY_STRING && d->len > 0;
		if (e->online)
			redis_peer_details(d, e);
	}
	if (--c->pending > 0)
		return STORE_DONE;
	if (!c->all || c->channel[0] == '\0') {
		list_round_end(c);
		return STORE_DONE;
	}
	for (size_t i = 0; i < c->round_n; i++) {
		if (list_entry(c, i)->online)
			continue;
		redis_key(k, sizeof(k), "u", c->names[i]);
		struct redis_req *q = redis_cmd(c, parse_list_key, "HGET", k, "pk", NULL);
		redis_req_tag(q, (int)i);
		redis_req_then(q);
		redis_key(k, sizeof(k), "p", c->names[i]);
		q = redis_cmd(c, parse_list_profile, "HMGET", k, "d", "s");
		redis_req_tag(q, (int)i);
		redis_req_then(q);
		c->pending += 2;
	}
	if (c->pending == 0)
		list_round_end(c);
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
			redis_pkey(k, sizeof(k), "online", p, "");
			redis_req_key(q[p], k);
			redis_pkey(k, sizeof(k), "peer", p, "");
			redis_req_key(q[p], k);
			c->pending++;
		}
		redis_req_str(q[p], c->names[i]);
	}
	for (unsigned p = 0; p < REDIS_PRESENCE_BUCKETS; p++)
		if (q[p] != NULL)
			redis_req_then(q[p]);
	if (c->pending == 0)
		list_round_end(c);
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
		redis_reply_str(r->element[i], c->names[c->round_n++], sizeof(c->names[0]));
	if (c->channel[0] != '\0') {
		c->round_partial = 0;
		list_states(c);
		return STORE_DONE;
	}
	/* A bucket that gave all it was asked may hold more past its last:
	 * the merged round stops at the lowest such name. */
	if (got == list_per_bucket(c) && got > 0 &&
	    r->element[got - 1]->type == REDIS_REPLY_STRING &&
	    (c->round_bound[0] == '\0' || strcmp(r->element[got - 1]->str, c->round_bound) < 0))
		redis_reply_str(r->element[got - 1], c->round_bound, sizeof(c->round_bound));
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
	c->round_base = c->n;
	c->round_bound[0] = '\0';
	c->pending = channel ? 1 : REDIS_PRESENCE_BUCKETS;
	for (unsigned p = 0; p < c->pending; p++) {
		if (channel)
			redis_key(k, sizeof(k), "c", c->channel);
		else
			redis_pkey(k, sizeof(k), "names", p, "");
		qs[p] = redis_cmd(c, parse_list_names, "ZRANGEBYLEX", k, start, "+");
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
	redis_reply_str(r, c->user, sizeof(c->user));
	return STORE_DONE;
}

static enum store_result
parse_list_channel(struct store_call *c, const redisReply *r)
{
	(void)c;
	return redis_reply_int(r) == 1 ? STORE_DONE : STORE_MISSING;
}

/* The start: the token, whether the channel exists, the trim of presence
 * (every bucket for a listing of every peer, else one that turns with
 * the clock) and the first round's names, in one write. */
void
redis_peer_list(struct store_state *s, struct store_call *c)
{
	struct redis_token_ref t;
	struct redis_req *q[2 + 2 * REDIS_PRESENCE_BUCKETS];
	size_t n = 0;
	char k[REDIS_KEY_MAX];
	int channel = c->channel[0] != '\0';

	if (c->with_token) {
		if (redis_token_ref(c, &t) < 0) {
			store_call_finish(c, STORE_BAD_TOKEN, NULL);
			return;
		}
		q[n++] = redis_cmd(c, parse_list_token, "GET", t.key, NULL, NULL);
	}
	if (channel) {
		redis_key(k, sizeof(k), "c", c->channel);
		q[n++] = redis_cmd(c, parse_list_channel, "EXISTS", k, NULL, NULL);
	}
	unsigned first = channel ? (unsigned)(hy_now_ms() / 100) % REDIS_PRESENCE_BUCKETS : 0;
	unsigned trims = channel ? REDIS_TRIM_SLICE : REDIS_PRESENCE_BUCKETS;
	for (unsigned i = 0; i < trims; i++) {
		q[n] = redis_req_new(c, REDIS_PRESENCE_PUT, redis_parse_any);
		redis_presence_keys(q[n], (first + i) % REDIS_PRESENCE_BUCKETS, 3);
		redis_req_str(q[n], "");
		redis_req_str(q[n], "0");
		redis_req_str(q[n++], "");
	}
	c->n = 0;
	c->more = 0;
	c->names = xmalloc(LIST_ROUND_MAX * sizeof(*c->names));
	c->peers = xmalloc((c->limit + list_chunk(c)) * sizeof(*c->peers));
	n += list_round_reqs(c, q + n);
	redis_req_start_all(s, q, n);
}
