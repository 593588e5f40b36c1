/* store_redis_mail.c — the Redis store's mailbox: deposits, listings,
 * deletions and the sweep of what expired. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/store.h"
#include "hychat/util.h"
#include "store_redis.h"
#include "store_redis_lua.h"

/* The mailbox. */

/* A mailbox's keys, in its owner's slot: hy:mb, hy:mq, hy:mc and, with
 * mid, hy:mid. */
static void
mailbox_keys(struct redis_req *q, const char *user, int mid)
{
	static const char *const keys[] = { "mb", "mq", "mc", "mid" };
	char k[REDIS_KEY_MAX];

	for (size_t i = 0; i < HY_ARRAY_LEN(keys) - (mid ? 0 : 1); i++) {
		redis_key(k, sizeof(k), keys[i], user);
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

	redis_key(k, sizeof(k), "rl", c->sender);
	redis_req_key(q, k);
	redis_req_u64(q, c->rate_per_min);
	return q;
}

static enum store_result
parse_mail_added(struct store_call *c, const redisReply *r)
{
	long long id = redis_reply_int(r);
	char k[REDIS_KEY_MAX], entry[HY_NAME_MAX + 24], at[24];

	if (id < 0) {
		if (c->rate_per_min > 0)
			redis_req_then(rate_req(c, REDIS_MAIL_REFUND, redis_parse_any));
		return STORE_QUOTA;
	}
	c->mail_id = (uint64_t)id;
	snprintf(k, sizeof(k), "hy:mail:{%u}", redis_bucket(c->user));
	snprintf(entry, sizeof(entry), "%s %lld", c->user, id);
	snprintf(at, sizeof(at), "%llu", (unsigned long long)c->now_ms);
	redis_req_then(redis_cmd(c, redis_parse_any, "ZADD", k, at, entry));
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
	long long v = redis_reply_int(r);

	if (v < 0) {
		c->retry_s = (unsigned)(-v - 1);
		return STORE_RATED;
	}
	redis_req_then(mail_put_req(c));
	return STORE_DONE;
}

void
redis_mail_add(struct store_state *s, struct store_call *c)
{
	struct redis_req *q =
	    c->rate_per_min > 0 ? rate_req(c, REDIS_MAIL_RATE, parse_mail_rate) : mail_put_req(c);

	redis_req_replicated(q);
	redis_req_start(s, q);
}

/* {more, id, "TIME BLOB", ...} into c->mails. */
static enum store_result
parse_mail_list(struct store_call *c, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
		return STORE_DONE;
	c->more = redis_reply_int(r->element[0]) != 0;
	size_t pairs = (r->elements - 1) / 2;
	c->mails = xcalloc(pairs > 0 ? pairs : 1, sizeof(*c->mails));
	for (size_t i = 0; i < pairs; i++) {
		const redisReply *v = r->element[2 + 2 * i];
		const char *sp = v->type == REDIS_REPLY_STRING ? memchr(v->str, ' ', v->len) : NULL;
		if (sp == NULL)
			continue;
		struct store_mail *m = &c->mails[c->n++];
		m->id = (uint64_t)redis_reply_int(r->element[1 + 2 * i]);
		m->time_ms = strtoull(v->str, NULL, 10);
		m->len = v->len - (size_t)(sp + 1 - v->str);
		m->blob = xmalloc(m->len > 0 ? m->len : 1);
		memcpy(m->blob, sp + 1, m->len);
	}
	return STORE_DONE;
}

void
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
	struct redis_req *q = redis_cmd(c, redis_parse_any, "ZREM", k, NULL, NULL);
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

void
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
	struct redis_req *drop = redis_cmd(c, redis_parse_any, "ZREM", k, NULL, NULL);
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
		struct redis_req *q = mail_delete_req(c, user, sp + 1, e->len - nlen - 1);
		redis_req_tag(q, 1);
		redis_req_then(q);
	}
	redis_req_then(drop);
	return STORE_DONE;
}

void
redis_mail_expire(struct store_state *s, struct store_call *c)
{
	struct redis_req *q[REDIS_BUCKETS];
	char k[REDIS_KEY_MAX], before[24];

	c->deleted = 0;
	snprintf(before, sizeof(before), "(%llu", (unsigned long long)c->before_ms);
	for (unsigned b = 0; b < REDIS_BUCKETS; b++) {
		snprintf(k, sizeof(k), "hy:mail:{%u}", b);
		q[b] = redis_cmd(c, parse_mail_due, "ZRANGEBYSCORE", k, "-inf", before);
		redis_req_str(q[b], "LIMIT");
		redis_req_str(q[b], "0");
		redis_req_u64(q[b], MAIL_SWEEP_PER_BUCKET);
		redis_req_tag(q[b], (int)b);
	}
	redis_req_start_all(s, q, REDIS_BUCKETS);
}
