/* store_local.c — the in-process shared state: online peers, tokens and
 * channels in a registry (registry.h) and profiles (profile_map.h) behind
 * a read-write lock, accounts, keys, memberships and profiles persisted
 * in a synchronous store (SQLite). Every
 * operation answers before it returns. The store is written before the
 * registry, so a failed write leaves both as they were. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/ratelimit.h"
#include "hychat/store.h"
#include "hychat/tracker_mailbox.h"
#include "hychat/util.h"
#include "profile_map.h"

struct store_local {
	struct store_state base;
	struct store *st; /* used, not owned */
	struct registry *reg; /* under lock */
	struct profile_map *profiles; /* under lock */
	/* Deposits per sender: made at the first deposit with a rate (the
	 * tracker's, the same for every call), under lock; then its own. */
	struct ratelimit *mail_rate;
	pthread_rwlock_t lock;
};

#define LOCAL_SWEEP_SLICE 4096 /* hash buckets swept per tick */

static struct store_local *
local_of(struct store_state *s)
{
	return (struct store_local *)s;
}

void
store_call_fini(struct store_call *c)
{
	for (size_t i = 0; c->mails != NULL && i < c->n; i++)
		free(c->mails[i].blob);
	free(c->mails);
	c->mails = NULL;
	free(c->names);
	free(c->peers);
	free(c->chans);
	free(c->cause);
	free(c->hints);
	c->hints = NULL;
	c->names = NULL;
	c->peers = NULL;
	c->chans = NULL;
	c->cause = NULL;
	c->n = 0;
}

void
store_call_finish(struct store_call *c, enum store_result r, const char *cause)
{
	c->result = r;
	if (cause != NULL && c->cause == NULL)
		c->cause = xstrdup(cause);
	c->done(c);
}

/* Ends c with the persistent store's failure (cause taken over). */
static void
local_failed(struct store_call *c, char *cause)
{
	c->cause = cause != NULL ? cause : xstrdup("unknown error");
	store_call_finish(c, STORE_FAILED, NULL);
}

static void
local_rd(struct store_local *l)
{
	pthread_rwlock_rdlock(&l->lock);
}

static void
local_wr(struct store_local *l)
{
	pthread_rwlock_wrlock(&l->lock);
}

static void
local_unlock(struct store_local *l)
{
	pthread_rwlock_unlock(&l->lock);
}

static void
local_attach(struct store_state *s, uv_loop_t *loop)
{
	(void)s;
	(void)loop;
}

static void
local_close(struct store_state *s)
{
	struct store_local *l = local_of(s);

	registry_free(l->reg);
	profile_map_free(l->profiles);
	ratelimit_free(l->mail_rate);
	pthread_rwlock_destroy(&l->lock);
	free(l);
}

static void
local_sweep(struct store_state *s)
{
	struct store_local *l = local_of(s);

	local_wr(l);
	registry_sweep(l->reg, hy_now_ms(), LOCAL_SWEEP_SLICE);
	local_unlock(l);
}

/* Accounts. */

static void
local_account_add(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	char *cause = NULL;
	int rc = l->st->ops->user_add(l->st, c->user, c->hash, &cause);

	if (rc < 0)
		local_failed(c, cause);
	else
		store_call_finish(c, rc == STORE_EXISTS ? STORE_TAKEN : STORE_DONE, NULL);
}

static void
local_account_hash(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	char *cause = NULL;
	int rc = l->st->ops->user_hash(l->st, c->user, c->hash, &cause);

	if (rc < 0)
		local_failed(c, cause);
	else
		store_call_finish(c, rc == 1 ? STORE_DONE : STORE_MISSING, NULL);
}

/* Tokens. */

static void
local_token_issue(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);

	local_wr(l);
	registry_token_issue(l->reg, c->user, hy_now_ms() + c->ttl_ms, c->token);
	local_unlock(l);
	store_call_finish(c, STORE_DONE, NULL);
}

static void
local_token_user(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);

	local_rd(l);
	const char *name = registry_token_user(l->reg, c->token_in, c->token_len, hy_now_ms());
	if (name != NULL)
		snprintf(c->user, sizeof(c->user), "%s", name);
	local_unlock(l);
	store_call_finish(c, name != NULL ? STORE_DONE : STORE_MISSING, NULL);
}

static void
local_token_revoke(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);

	local_wr(l);
	int rc = registry_token_revoke(l->reg, c->token_in, c->token_len, hy_now_ms());
	if (rc == 0)
		registry_peer_drop(l->reg, c->user);
	local_unlock(l);
	store_call_finish(c, rc == 0 ? STORE_DONE : STORE_MISSING, NULL);
}

/* Peers. */

/* 0 if user may join channel (not yet a member) within the caps, else
 * the cap that refuses it. Under the lock. */
static enum store_cap
local_join_cap(const struct store_local *l, const struct store_call *c, const char *channel)
{
	if (registry_user_channels(l->reg, c->user) >= c->max_user_channels)
		return STORE_CAP_USER;
	if (!registry_channel_exists(l->reg, channel) &&
	    registry_channel_count(l->reg) >= c->max_channels)
		return STORE_CAP_TOTAL;
	return 0;
}

static void
local_peer_submit(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	char *cause = NULL;
	int rc = 0;

	local_wr(l);
	if (c->pubkey_len > 0 &&
	    registry_pubkey_differs(l->reg, c->user, c->pubkey, c->pubkey_len)) {
		rc = l->st->ops->pubkey_set(l->st, c->user, c->pubkey, c->pubkey_len, &cause);
		if (rc == 0)
			registry_pubkey_set(l->reg, c->user, c->pubkey, c->pubkey_len);
	}
	for (size_t i = 0; rc == 0 && i < c->nchannels; i++) {
		if (registry_is_member(l->reg, c->channels[i], c->user))
			continue;
		enum store_cap cap = local_join_cap(l, c, c->channels[i]);
		if (cap != 0) {
			c->refused[i] = 1;
			c->cap = c->cap != 0 ? c->cap : cap;
			continue;
		}
		rc = l->st->ops->join(l->st, c->channels[i], c->user, &cause);
		if (rc == 0)
			registry_join(l->reg, c->channels[i], c->user);
	}
	if (rc == 0) {
		c->peer_id =
		    registry_peer_set(l->reg, c->user, c->ip, c->port, hy_now_ms() + c->ttl_ms);
		registry_peer_nat(l->reg, c->user, c->observed, c->ip6);
		c->total = registry_online(l->reg);
	}
	local_unlock(l);
	if (rc < 0)
		local_failed(c, cause);
	else
		store_call_finish(c, STORE_DONE, NULL);
}

static void
local_peer_renew(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);

	local_wr(l);
	uint64_t now = hy_now_ms();
	int rc = registry_peer_renew(l->reg, c->user, now, now + c->ttl_ms);
	local_unlock(l);
	store_call_finish(c, rc == 0 ? STORE_DONE : STORE_MISSING, NULL);
}

static void
local_peer_beat(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	enum store_result r = STORE_DONE;

	local_wr(l);
	uint64_t now = hy_now_ms();
	const char *name = registry_token_user(l->reg, c->token_in, c->token_len, now);
	if (name == NULL)
		r = STORE_BAD_TOKEN;
	else if (c->user[0] != '\0' && strcmp(c->user, name) != 0)
		r = STORE_NOT_YOURS;
	else if (registry_peer_renew(l->reg, name, now, now + c->ttl_ms) < 0)
		r = STORE_MISSING;
	if (name != NULL)
		snprintf(c->user, sizeof(c->user), "%s", name);
	local_unlock(l);
	store_call_finish(c, r, NULL);
}

/* Under the lock: user's profile into p ("" and "" for none). */
static void
local_profile(const struct store_local *l, const char *user, struct store_peer *p)
{
	const char *display = "", *status = "";

	profile_map_get(l->profiles, user, &display, &status);
	snprintf(p->display, sizeof(p->display), "%s", display);
	snprintf(p->status, sizeof(p->status), "%s", status);
}

struct local_list {
	struct store_local *l;
	struct store_call *c;
};

static void
add_peer(const struct registry_peer *p, void *arg)
{
	struct local_list *ll = arg;
	struct store_call *c = ll->c;
	struct store_peer *o = &c->peers[c->n++];

	snprintf(o->name, sizeof(o->name), "%s", p->name);
	snprintf(o->ip, sizeof(o->ip), "%s", p->ip);
	o->port = p->port;
	snprintf(o->pubkey, sizeof(o->pubkey), "%s", p->pubkey != NULL ? p->pubkey : "");
	o->online = p->online;
	snprintf(o->observed, sizeof(o->observed), "%s", p->observed);
	snprintf(o->ip6, sizeof(o->ip6), "%s", p->ip6);
	local_profile(ll->l, p->name, o);
}

static void
local_peer_list(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	struct local_list ll = { l, c };

	c->peers = xcalloc(c->limit > 0 ? c->limit : 1, sizeof(*c->peers));
	c->n = 0;
	local_rd(l);
	if (c->with_token) {
		const char *name =
		    registry_token_user(l->reg, c->token_in, c->token_len, hy_now_ms());
		if (name == NULL) {
			local_unlock(l);
			store_call_finish(c, STORE_BAD_TOKEN, NULL);
			return;
		}
		snprintf(c->user, sizeof(c->user), "%s", name);
	}
	long n = (c->all && c->channel[0] ? registry_list_members : registry_list)(l->reg,
	    c->channel[0] ? c->channel : NULL, c->after[0] ? c->after : NULL, c->limit, hy_now_ms(),
	    add_peer, &ll, &c->more);
	local_unlock(l);
	store_call_finish(c, n < 0 ? STORE_MISSING : STORE_DONE, NULL);
}

static void
local_peer_info(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	struct registry_user_info info;
	char hash[STORE_HASH_MAX], *cause = NULL;

	local_rd(l);
	int online = registry_user_info(l->reg, c->user, hy_now_ms(), &info);
	c->member = c->channel[0] != '\0' && registry_is_member(l->reg, c->channel, c->user);
	local_profile(l, c->user, &c->info);
	local_unlock(l);
	if (online < 0) {
		/* The registry holds every user with a key or an address; the
		 * store says whether a keyless, never-seen account exists. */
		int found = l->st->ops->user_hash(l->st, c->user, hash, &cause);
		sodium_memzero(hash, sizeof(hash));
		if (found < 0) {
			local_failed(c, cause);
			return;
		}
		if (found == 0) {
			store_call_finish(c, STORE_MISSING, NULL);
			return;
		}
		online = 0;
		info.pubkey[0] = '\0';
	}
	c->online = online > 0;
	if (c->online) {
		snprintf(c->info.ip, sizeof(c->info.ip), "%s", info.ip);
		snprintf(c->info.observed, sizeof(c->info.observed), "%s", info.observed);
		snprintf(c->info.ip6, sizeof(c->info.ip6), "%s", info.ip6);
		c->info.port = info.port;
	}
	snprintf(c->info.pubkey, sizeof(c->info.pubkey), "%s", info.pubkey);
	store_call_finish(c, STORE_DONE, NULL);
}

/* Channels. */

static void
add_member(const char *name, void *arg)
{
	struct store_call *c = arg;

	snprintf(c->names[c->n++], sizeof(c->names[0]), "%s", name);
}

static void
local_channel_join(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	char *cause = NULL;
	int rc = 0;

	local_wr(l);
	if (!registry_is_member(l->reg, c->channel, c->user)) {
		enum store_cap cap = local_join_cap(l, c, c->channel);
		if (cap != 0) {
			local_unlock(l);
			c->cap = cap;
			store_call_finish(c, STORE_CAPPED, NULL);
			return;
		}
		rc = l->st->ops->join(l->st, c->channel, c->user, &cause);
		if (rc == 0)
			registry_join(l->reg, c->channel, c->user);
	}
	if (rc == 0) {
		c->names = xcalloc(c->limit > 0 ? c->limit : 1, sizeof(*c->names));
		c->n = 0;
		long count = registry_members(l->reg, c->channel, c->limit, add_member, c);
		c->total = count > 0 ? (uint64_t)count : 0;
	}
	local_unlock(l);
	if (rc < 0)
		local_failed(c, cause);
	else
		store_call_finish(c, STORE_DONE, NULL);
}

static void
local_channel_leave(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	char *cause = NULL;
	int rc = 0;

	local_wr(l);
	int member = registry_is_member(l->reg, c->channel, c->user);
	if (member) {
		rc = l->st->ops->leave(l->st, c->channel, c->user, &cause);
		if (rc == 0)
			registry_leave(l->reg, c->channel, c->user);
	}
	local_unlock(l);
	if (!member)
		store_call_finish(c, STORE_MISSING, NULL);
	else if (rc < 0)
		local_failed(c, cause);
	else
		store_call_finish(c, STORE_DONE, NULL);
}

static void
add_channel(const char *name, size_t members, void *arg)
{
	struct store_call *c = arg;
	struct store_channel *o = &c->chans[c->n++];

	snprintf(o->name, sizeof(o->name), "%s", name);
	o->members = members;
}

static void
local_channel_list(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);

	c->chans = xcalloc(c->limit > 0 ? c->limit : 1, sizeof(*c->chans));
	c->n = 0;
	local_rd(l);
	registry_channels(
	    l->reg, c->after[0] ? c->after : NULL, c->limit, add_channel, c, &c->more);
	c->channel_count = registry_channel_count(l->reg);
	local_unlock(l);
	store_call_finish(c, STORE_DONE, NULL);
}

static void
local_stats(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	char *cause = NULL;

	if (l->st->ops->user_count(l->st, &c->accounts, &cause) < 0) {
		local_failed(c, cause);
		return;
	}
	local_rd(l);
	c->total = registry_online(l->reg);
	c->channel_count = registry_channel_count(l->reg);
	c->sessions = registry_token_count(l->reg);
	local_unlock(l);
	store_call_finish(c, STORE_DONE, NULL);
}

/* The mailbox: the persistent store's. */

static int
local_has_mail(struct store_call *c, const struct store_local *l)
{
	if (l->st->ops->mail_add != NULL && l->st->ops->mail_list != NULL &&
	    l->st->ops->mail_delete != NULL)
		return 1;
	store_call_finish(c, STORE_FAILED, "this store has no mailbox");
	return 0;
}

/* The deposit rate's buckets, made at the first use; NULL for no limit. */
static struct ratelimit *
local_mail_rate(struct store_local *l, unsigned per_min)
{
	struct ratelimit *rate;

	if (per_min == 0)
		return NULL;
	local_rd(l);
	rate = l->mail_rate;
	local_unlock(l);
	if (rate != NULL)
		return rate;
	local_wr(l);
	if (l->mail_rate == NULL)
		l->mail_rate = ratelimit_new(MAILBOX_RATE_SLOTS, per_min, per_min);
	rate = l->mail_rate;
	local_unlock(l);
	return rate;
}

static void
local_mail_add(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	char *cause = NULL;

	if (!local_has_mail(c, l))
		return;
	struct ratelimit *rate = local_mail_rate(l, c->rate_per_min);
	uint64_t now = hy_now_ms();
	if (rate != NULL &&
	    (c->retry_s = ratelimit_take(rate, c->sender, strlen(c->sender), now))) {
		store_call_finish(c, STORE_RATED, NULL);
		return;
	}
	int rc = l->st->ops->mail_add(l->st, c->user, c->blob, c->blob_len, c->now_ms, c->max_msgs,
	    c->max_bytes, &c->mail_id, &cause);
	if (rc != 0 && rate != NULL)
		ratelimit_refund(rate, c->sender, strlen(c->sender), now);
	if (rc < 0)
		local_failed(c, cause);
	else
		store_call_finish(c, rc == STORE_FULL ? STORE_QUOTA : STORE_DONE, NULL);
}

static void
local_mail_one(uint64_t id, uint64_t time_ms, const uint8_t *blob, size_t len, void *arg)
{
	struct store_call *c = arg;

	c->mails = xrealloc(c->mails, (c->n + 1) * sizeof(*c->mails));
	struct store_mail *m = &c->mails[c->n++];
	m->id = id;
	m->time_ms = time_ms;
	m->len = len;
	m->blob = xmalloc(len > 0 ? len : 1);
	memcpy(m->blob, blob, len);
}

static void
local_mail_list(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	char *cause = NULL;

	if (!local_has_mail(c, l))
		return;
	c->more = 0;
	if (l->st->ops->mail_list(l->st, c->user, c->after_id, c->limit, c->max_page_bytes,
	        local_mail_one, c, &c->more, &cause) < 0)
		local_failed(c, cause);
	else
		store_call_finish(c, STORE_DONE, NULL);
}

static void
local_mail_delete(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	char *cause = NULL;

	if (!local_has_mail(c, l))
		return;
	int rc = l->st->ops->mail_delete(l->st, c->user, c->ids, c->nids, &cause);
	if (rc < 0) {
		local_failed(c, cause);
		return;
	}
	c->deleted = (uint64_t)rc;
	store_call_finish(c, STORE_DONE, NULL);
}

/* Profiles: the store first (where it keeps them), then the map, under
 * the write lock so that two changes to one profile cannot interleave. */
static void
local_profile_set(struct store_state *s, struct store_call *c)
{
	struct store_local *l = local_of(s);
	struct store_peer now;
	char *cause = NULL;

	local_wr(l);
	local_profile(l, c->user, &now);
	if (c->display_in != NULL)
		snprintf(now.display, sizeof(now.display), "%s", c->display_in);
	if (c->status_in != NULL)
		snprintf(now.status, sizeof(now.status), "%s", c->status_in);
	if (l->st->ops->profile_set != NULL &&
	    l->st->ops->profile_set(l->st, c->user, now.display, now.status, &cause) < 0) {
		local_unlock(l);
		local_failed(c, cause);
		return;
	}
	profile_map_put(l->profiles, c->user, now.display, now.status);
	local_unlock(l);
	memcpy(c->info.display, now.display, sizeof(now.display));
	memcpy(c->info.status, now.status, sizeof(now.status));
	store_call_finish(c, STORE_DONE, NULL);
}

static const struct store_state_ops local_ops = {
	.attach = local_attach,
	.detach = local_attach,
	.close = local_close,
	.sweep = local_sweep,
	.account_add = local_account_add,
	.account_hash = local_account_hash,
	.token_issue = local_token_issue,
	.token_user = local_token_user,
	.token_revoke = local_token_revoke,
	.peer_submit = local_peer_submit,
	.peer_renew = local_peer_renew,
	.peer_beat = local_peer_beat,
	.peer_list = local_peer_list,
	.peer_info = local_peer_info,
	.channel_join = local_channel_join,
	.channel_leave = local_channel_leave,
	.channel_list = local_channel_list,
	.stats = local_stats,
	.mail_add = local_mail_add,
	.mail_list = local_mail_list,
	.mail_delete = local_mail_delete,
	.profile_set = local_profile_set,
};

static void
load_member(const char *channel, const char *name, void *arg)
{
	char canon[HY_CHANNEL_MAX + 1];

	if (hy_name_valid(name, strlen(name)) &&
	    hy_channel_canon(channel, strlen(channel), canon) == 0)
		registry_join(arg, canon, name);
}

static void
load_profile(const char *name, const char *display, const char *status, void *arg)
{
	if (name != NULL && display != NULL && status != NULL &&
	    hy_name_valid(name, strlen(name)) && strlen(display) <= STORE_DISPLAY_MAX &&
	    strlen(status) <= STORE_STATUS_MAX)
		profile_map_put(arg, name, display, status);
}

static void
load_pubkey(const char *name, const uint8_t *key, size_t len, void *arg)
{
	if (hy_name_valid(name, strlen(name)) && len <= REG_PUBKEY_MAX)
		registry_pubkey_set(arg, name, key, len);
}

struct store_state *
store_state_local_new(struct store *st, char **cause)
{
	struct store_local *l = xcalloc(1, sizeof(*l));
	pthread_rwlockattr_t attr;

	l->base.ops = &local_ops;
	l->st = st;
	l->reg = registry_new();
	l->profiles = profile_map_new();
	if (st->ops->each_member(st, load_member, l->reg, cause) < 0 ||
	    st->ops->each_pubkey(st, load_pubkey, l->reg, cause) < 0 ||
	    (st->ops->each_profile != NULL &&
	        st->ops->each_profile(st, load_profile, l->profiles, cause) < 0)) {
		registry_free(l->reg);
		profile_map_free(l->profiles);
		free(l);
		return NULL;
	}
	/* Writers first: a stream of listings must not starve heartbeats. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&l->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return &l->base;
}

struct registry *
store_state_local_registry(struct store_state *s)
{
	return s->ops == &local_ops ? local_of(s)->reg : NULL;
}
