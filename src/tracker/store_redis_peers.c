/* store_redis_peers.c — the Redis store's registration, channels, a
 * peer's card and /stats, each a few calls of one slot (store_redis_lua.c
 * says why in the order they go). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/store.h"
#include "hychat/util.h"
#include "store_redis.h"
#include "store_redis_lua.h"

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

static enum store_result parse_join_user(struct store_call *c, const redisReply *r);

static struct redis_req *
join_req(struct store_call *c, int tag)
{
	char k[REDIS_KEY_MAX];
	struct redis_req *q = redis_req_new(c, REDIS_JOIN_USER, parse_join_user);

	redis_key(k, sizeof(k), "uc", c->user);
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
	long long v = redis_reply_int(r);
	char k[REDIS_KEY_MAX];

	if (v < 0)
		return join_capped(c, tag, STORE_CAP_USER);
	if (v == 2 && tag >= 0) {
		submit_from(c, (size_t)tag + 1); /* a member already: nothing to do */
		return STORE_DONE;
	}
	struct redis_req *q = redis_req_new(c, REDIS_JOIN_CHANNEL, parse_join_channel);
	redis_req_tag(q, v == 2 ? JOIN_AGAIN : tag);
	redis_key(k, sizeof(k), "c", join_name(c, tag));
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
		const redisReply *names = redis_reply_at(r, 1);
		size_t n = names != NULL ? names->elements : 0;
		c->total = (uint64_t)redis_reply_int(redis_reply_at(r, 0));
		c->names = xcalloc(n > 0 ? n : 1, sizeof(*c->names));
		for (size_t i = 0; i < n; i++)
			redis_reply_str(names->element[i], c->names[c->n++], sizeof(c->names[0]));
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

	if (redis_reply_int(r) == -2) {
		/* A new channel past the total's cap: the joins undone. */
		redis_key(k, sizeof(k), "c", join_name(c, tag));
		redis_req_then(redis_cmd(c, redis_parse_any, "ZREM", k, c->user, NULL));
		redis_key(k, sizeof(k), "uc", c->user);
		redis_req_then(redis_cmd(c, redis_parse_any, "SREM", k, join_name(c, tag), NULL));
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
	c->total += (uint64_t)redis_reply_int(r);
	return STORE_DONE;
}

static void
submit_presence(struct store_call *c)
{
	char details[REG_IP_MAX * 3 + REG_PUBKEY_TEXT_SIZE + STORE_DISPLAY_MAX + STORE_STATUS_MAX +
	    32];
	unsigned mine = redis_pbucket(c->user);
	int profiled = c->info.display[0] != '\0' || c->info.status[0] != '\0';

	snprintf(details, sizeof(details), "%s %u %s %s %s%s%s%s%s", c->ip, c->port, c->info.pubkey,
	    c->observed, c->ip6, profiled ? "\n" : "", profiled ? c->info.display : "",
	    profiled ? "\n" : "", profiled ? c->info.status : "");
	c->total = 0;
	for (unsigned p = 0; p < REDIS_PRESENCE_BUCKETS; p++) {
		struct redis_req *q = redis_req_new(c, REDIS_PRESENCE_PUT, parse_presence_count);
		redis_presence_keys(q, p, 3);
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
	c->peer_id = (uint32_t)redis_reply_int(r);
	submit_from(c, 0);
	return STORE_DONE;
}

static enum store_result
parse_next_id(struct store_call *c, const redisReply *r)
{
	char k[REDIS_KEY_MAX];
	struct redis_req *q = redis_req_new(c, REDIS_SUBMIT_ID, parse_submit_id);

	redis_key(k, sizeof(k), "u", c->user);
	redis_req_key(q, k);
	redis_req_u64(q, (uint64_t)redis_reply_int(r));
	redis_req_then(q);
	return STORE_DONE;
}

static enum store_result
parse_submit_account(struct store_call *c, const redisReply *r)
{
	long long id = redis_reply_int(redis_reply_at(r, 0));

	redis_reply_str(redis_reply_at(r, 1), c->info.pubkey, sizeof(c->info.pubkey));
	redis_reply_str(redis_reply_at(r, 2), c->info.display, sizeof(c->info.display));
	redis_reply_str(redis_reply_at(r, 3), c->info.status, sizeof(c->info.status));
	redis_mail_known(c, redis_reply_at(r, 4));
	if (id <= 0) {
		redis_req_then(redis_cmd(c, parse_next_id, "INCR", "hy:nextid", NULL, NULL));
		return STORE_DONE;
	}
	c->peer_id = (uint32_t)id;
	submit_from(c, 0);
	return STORE_DONE;
}

void
redis_peer_submit(struct store_state *s, struct store_call *c)
{
	char key[REG_PUBKEY_TEXT_SIZE] = "", k[REDIS_KEY_MAX];

	if (c->pubkey_len > 0)
		sodium_bin2base64(
		    key, sizeof(key), c->pubkey, c->pubkey_len, sodium_base64_VARIANT_ORIGINAL);
	c->cap = 0;
	memset(c->refused, 0, sizeof(c->refused));
	struct redis_req *q = redis_req_new(c, REDIS_SUBMIT_ACCOUNT, parse_submit_account);
	redis_key(k, sizeof(k), "u", c->user);
	redis_req_key(q, k);
	redis_key(k, sizeof(k), "p", c->user);
	redis_req_key(q, k);
	redis_key(k, sizeof(k), "mc", c->user);
	redis_req_key(q, k);
	redis_req_str(q, key);
	redis_req_replicated(q);
	redis_req_start(s, q);
}

/* peer_info: presence, the account, the profile and the membership, in
 * one write (four slots); the presence's details first, since the
 * account's key and the profile override what they carry. */

static enum store_result
parse_info_state(struct store_call *c, const redisReply *r)
{
	c->online = redis_reply_int(redis_reply_at(r, 0)) != 0;
	if (c->online)
		redis_peer_details(redis_reply_at(r, 1), &c->info);
	return STORE_DONE;
}

static enum store_result
parse_info_account(struct store_call *c, const redisReply *r)
{
	const redisReply *h = redis_reply_at(r, 0);

	if (h == NULL || h->type != REDIS_REPLY_STRING)
		return STORE_MISSING;
	redis_reply_str(redis_reply_at(r, 1), c->info.pubkey, sizeof(c->info.pubkey));
	return STORE_DONE;
}

static enum store_result
parse_info_profile(struct store_call *c, const redisReply *r)
{
	redis_reply_str(redis_reply_at(r, 0), c->info.display, sizeof(c->info.display));
	redis_reply_str(redis_reply_at(r, 1), c->info.status, sizeof(c->info.status));
	return STORE_DONE;
}

static enum store_result
parse_info_member(struct store_call *c, const redisReply *r)
{
	c->member = r->type == REDIS_REPLY_STRING;
	return STORE_DONE;
}

void
redis_peer_info(struct store_state *s, struct store_call *c)
{
	char k[REDIS_KEY_MAX];
	struct redis_req *q[4];
	size_t n = 0;

	c->online = c->member = 0;
	q[n] = redis_req_new(c, REDIS_PEER_STATE, parse_info_state);
	redis_presence_keys(q[n], redis_pbucket(c->user), 1);
	redis_pkey(k, sizeof(k), "peer", redis_pbucket(c->user), "");
	redis_req_key(q[n], k);
	redis_req_str(q[n++], c->user);
	redis_key(k, sizeof(k), "u", c->user);
	q[n++] = redis_cmd(c, parse_info_account, "HMGET", k, "h", "pk");
	redis_key(k, sizeof(k), "p", c->user);
	q[n++] = redis_cmd(c, parse_info_profile, "HMGET", k, "d", "s");
	if (c->channel[0] != '\0') {
		redis_key(k, sizeof(k), "c", c->channel);
		q[n++] = redis_cmd(c, parse_info_member, "ZSCORE", k, c->user, NULL);
	}
	redis_req_start_all(s, q, n);
}

/* Channels. */

void
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
	if (redis_reply_int(r) == 1)
		redis_req_then(
		    redis_cmd(c, redis_parse_any, "ZADD", "hy:channels", "0", c->channel));
	return STORE_DONE;
}

static enum store_result
parse_unlisted(struct store_call *c, const redisReply *r)
{
	char k[REDIS_KEY_MAX];

	(void)r;
	redis_key(k, sizeof(k), "c", c->channel);
	redis_req_then(redis_cmd(c, parse_still, "EXISTS", k, NULL, NULL));
	return STORE_DONE;
}

static enum store_result
parse_left(struct store_call *c, const redisReply *r)
{
	long long left = redis_reply_int(r);
	char k[REDIS_KEY_MAX];

	if (left < 0)
		return STORE_MISSING;
	redis_key(k, sizeof(k), "uc", c->user);
	redis_req_then(redis_cmd(c, redis_parse_any, "SREM", k, c->channel, NULL));
	if (left == 0)
		redis_req_then(
		    redis_cmd(c, parse_unlisted, "ZREM", "hy:channels", c->channel, NULL));
	return STORE_DONE;
}

void
redis_channel_leave(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = redis_req_new(c, REDIS_LEAVE_CHANNEL, parse_left);
	char k[REDIS_KEY_MAX];

	redis_key(k, sizeof(k), "c", c->channel);
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
	c->channel_count = (uint64_t)redis_reply_int(r);
	return STORE_DONE;
}

static enum store_result
parse_channel_members(struct store_call *c, const redisReply *r)
{
	int i = redis_tag();

	if (i >= 0 && (size_t)i < c->n)
		c->chans[i].members = (size_t)redis_reply_int(r);
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
		redis_reply_str(r->element[i], c->chans[i].name, sizeof(c->chans[i].name));
		redis_key(k, sizeof(k), "c", c->chans[i].name);
		struct redis_req *q = redis_cmd(c, parse_channel_members, "ZCARD", k, NULL, NULL);
		redis_req_tag(q, (int)i);
		redis_req_then(q);
	}
	return STORE_DONE;
}

void
redis_channel_list(struct store_state *s, struct store_call *c)
{
	char start[HY_CHANNEL_MAX + 2];
	struct redis_req *q[2];

	snprintf(start, sizeof(start), "%s%s", c->after[0] != '\0' ? "(" : "-", c->after);
	q[0] = redis_cmd(c, parse_channel_count, "ZCARD", "hy:channels", NULL, NULL);
	q[1] = redis_cmd(c, parse_channel_names, "ZRANGEBYLEX", "hy:channels", start, "+");
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
	c->total += (uint64_t)redis_reply_int(redis_reply_at(r, 0));
	c->sessions += (uint64_t)redis_reply_int(redis_reply_at(r, 1));
	return STORE_DONE;
}

static enum store_result
parse_stats_users(struct store_call *c, const redisReply *r)
{
	c->accounts += (uint64_t)redis_reply_int(r);
	return STORE_DONE;
}

void
redis_stats(struct store_state *s, struct store_call *c)
{
	struct redis_req *q[REDIS_PRESENCE_BUCKETS + 1 + REDIS_BUCKETS];
	char k[REDIS_KEY_MAX];
	size_t n = 0;

	c->total = c->sessions = c->accounts = 0;
	for (unsigned p = 0; p < REDIS_PRESENCE_BUCKETS; p++) {
		q[n] = redis_req_new(c, REDIS_PRESENCE_STATS, parse_stats_bucket);
		redis_presence_keys(q[n++], p, 4);
	}
	q[n++] = redis_cmd(c, parse_channel_count, "ZCARD", "hy:channels", NULL, NULL);
	for (unsigned b = 0; b < REDIS_BUCKETS; b++) {
		snprintf(k, sizeof(k), "hy:users:{%u}", b);
		q[n++] = redis_cmd(c, parse_stats_users, "SCARD", k, NULL, NULL);
	}
	redis_req_start_all(s, q, n);
}
