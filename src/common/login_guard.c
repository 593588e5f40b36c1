/* login_guard.c — the throttle in front of password hashing: three token
 * buckets and two caps on queued hashes (see login_guard.h for why). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/login_guard.h"
#include "hychat/ratelimit.h"
#include "hychat/util.h"

struct login_guard {
	struct login_guard_config cfg;
	struct ratelimit *addr; /* also counts each address's jobs in flight */
	struct ratelimit *pair; /* also marks addresses that logged in */
	struct ratelimit *account;
	atomic_uint jobs;
};

struct option_entry {
	const char *flag;
	size_t offset;
	unsigned min, max;
	const char *range; /* the reason of a value out of it */
};

static const struct option_entry option_table[] = {
#define LOGIN_GUARD_ENTRY(field, flag, def, min, max, help) \
	{ flag, offsetof(struct login_guard_config, field), min, max, \
		"expected a number from " #min " to " #max },
	LOGIN_GUARD_OPTIONS(LOGIN_GUARD_ENTRY)
#undef LOGIN_GUARD_ENTRY
};

void
login_guard_defaults(struct login_guard_config *cfg)
{
#define LOGIN_GUARD_DEFAULT(field, flag, def, min, max, help) cfg->field = def;
	LOGIN_GUARD_OPTIONS(LOGIN_GUARD_DEFAULT)
#undef LOGIN_GUARD_DEFAULT
}

int
login_guard_option(
    struct login_guard_config *cfg, const char *flag, const char *value, char **cause)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(option_table); i++) {
		const struct option_entry *e = &option_table[i];
		if (strcmp(flag, e->flag) != 0)
			continue;
		long long v;
		if (hy_parse_number(value, (long long)e->min, (long long)e->max, &v) < 0) {
			hy_cause(cause, "%s", e->range);
			return -1;
		}
		*(unsigned *)(void *)((char *)cfg + e->offset) = (unsigned)v;
		return 1;
	}
	return 0;
}

struct login_guard *
login_guard_new(const struct login_guard_config *cfg)
{
	struct login_guard *g = xcalloc(1, sizeof(*g));

	g->cfg = *cfg;
	g->addr = ratelimit_new(LOGIN_GUARD_SLOTS, cfg->addr_rate, cfg->addr_burst);
	g->pair = ratelimit_new(LOGIN_GUARD_SLOTS, cfg->pair_rate, cfg->pair_burst);
	g->account = ratelimit_new(LOGIN_GUARD_SLOTS, cfg->account_rate, cfg->account_burst);
	atomic_init(&g->jobs, 0);
	return g;
}

void
login_guard_free(struct login_guard *g)
{
	if (g == NULL)
		return;
	ratelimit_free(g->addr);
	ratelimit_free(g->pair);
	ratelimit_free(g->account);
	free(g);
}

/* The keys of one attempt: the address's, and the address's followed by
 * the account name. */
struct keys {
	uint8_t addr[RATELIMIT_KEY_MAX];
	size_t addr_len;
	uint8_t pair[RATELIMIT_KEY_MAX];
	size_t pair_len;
	size_t user_len;
};

static void
keys_make(struct keys *k, const char *ip, const char *user)
{
	k->addr_len = ratelimit_addr_key(ip, k->addr);
	k->user_len = strlen(user);
	if (k->user_len > RATELIMIT_KEY_MAX - k->addr_len)
		k->user_len = RATELIMIT_KEY_MAX - k->addr_len;
	memcpy(k->pair, k->addr, k->addr_len);
	memcpy(k->pair + k->addr_len, user, k->user_len);
	k->pair_len = k->addr_len + k->user_len;
}

static void
refund(struct login_guard *g, const struct keys *k, const char *user, int buckets, uint64_t now)
{
	if (buckets > 0)
		ratelimit_refund(g->addr, k->addr, k->addr_len, now);
	if (buckets > 1)
		ratelimit_refund(g->pair, k->pair, k->pair_len, now);
	if (buckets > 2)
		ratelimit_refund(g->account, user, strlen(user), now);
}

enum login_guard_verdict
login_guard_begin(
    struct login_guard *g, const char *ip, const char *user, uint64_t now, unsigned *retry_s)
{
	struct keys k;
	unsigned wait;

	keys_make(&k, ip, user);
	if ((wait = ratelimit_take(g->addr, k.addr, k.addr_len, now)) > 0) {
		*retry_s = wait;
		return LOGIN_GUARD_THROTTLED;
	}
	if ((wait = ratelimit_take(g->pair, k.pair, k.pair_len, now)) > 0) {
		refund(g, &k, user, 1, now);
		*retry_s = wait;
		return LOGIN_GUARD_THROTTLED;
	}
	if (!ratelimit_marked(g->pair, k.pair, k.pair_len) &&
	    (wait = ratelimit_take(g->account, user, strlen(user), now)) > 0) {
		refund(g, &k, user, 2, now);
		*retry_s = wait;
		return LOGIN_GUARD_THROTTLED;
	}
	if (ratelimit_hold(g->addr, k.addr, k.addr_len, g->cfg.jobs_per_addr) < 0) {
		refund(g, &k, user, 3, now);
		*retry_s = LOGIN_GUARD_BUSY_RETRY_S;
		return LOGIN_GUARD_BUSY;
	}
	if (atomic_fetch_add(&g->jobs, 1) >= g->cfg.max_jobs) {
		atomic_fetch_sub(&g->jobs, 1);
		ratelimit_release(g->addr, k.addr, k.addr_len);
		refund(g, &k, user, 3, now);
		*retry_s = LOGIN_GUARD_BUSY_RETRY_S;
		return LOGIN_GUARD_BUSY;
	}
	return LOGIN_GUARD_OK;
}

void
login_guard_end(struct login_guard *g, const char *ip, const char *user,
    enum login_guard_outcome outcome, uint64_t now)
{
	struct keys k;

	keys_make(&k, ip, user);
	ratelimit_release(g->addr, k.addr, k.addr_len);
	atomic_fetch_sub(&g->jobs, 1);
	if (outcome != LOGIN_GUARD_FAILURE)
		refund(g, &k, user, 3, now);
	if (outcome == LOGIN_GUARD_SUCCESS)
		ratelimit_mark(g->pair, k.pair, k.pair_len, now);
}

unsigned
login_guard_jobs(const struct login_guard *g)
{
	return atomic_load(&g->jobs);
}
