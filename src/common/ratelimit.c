/* ratelimit.c — token buckets in a fixed, set-associative table. */
#include <arpa/inet.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/ratelimit.h"
#include "hychat/util.h"

#define MS_PER_MIN 60000.0
#define MS_PER_S 1000.0
#define ADDR_TAG_V4 4
#define ADDR_TAG_V6 6
#define ADDR_TAG_TEXT 0

struct slot {
	uint8_t key[RATELIMIT_KEY_MAX];
	uint8_t len; /* 0: free */
	uint8_t marked;
	uint16_t held;
	double tokens; /* as of last_ms */
	uint64_t last_ms;
};

struct ratelimit {
	pthread_mutex_t lock;
	struct slot *slots;
	size_t nsets; /* a power of two */
	double per_ms;
	double burst;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

struct ratelimit *
ratelimit_new(size_t slots, unsigned per_min, unsigned burst)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));
	size_t want = (slots + RATELIMIT_WAYS - 1) / RATELIMIT_WAYS;

	rl->nsets = 1;
	while (rl->nsets < want)
		rl->nsets *= 2;
	rl->slots = xcalloc(rl->nsets * RATELIMIT_WAYS, sizeof(*rl->slots));
	rl->per_ms = per_min / MS_PER_MIN;
	rl->burst = burst;
	randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
	pthread_mutex_init(&rl->lock, NULL);
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->slots);
	free(rl);
}

static double
refilled(const struct ratelimit *rl, const struct slot *s, uint64_t now)
{
	double t = s->tokens;

	if (now > s->last_ms)
		t += (double)(now - s->last_ms) * rl->per_ms;
	return t < rl->burst ? t : rl->burst;
}

/* True if slot a matters less than slot b: nothing in flight, unmarked,
 * more tokens (a full bucket is a fresh one), older. */
static int
less_worth(const struct ratelimit *rl, const struct slot *a, const struct slot *b, uint64_t now)
{
	if ((a->held > 0) != (b->held > 0))
		return a->held == 0;
	if (a->marked != b->marked)
		return !a->marked;
	double ta = refilled(rl, a, now), tb = refilled(rl, b, now);
	if (ta != tb)
		return ta > tb;
	return a->last_ms < b->last_ms;
}

/* The slot of key in its set, or NULL; with create, a new slot for it in
 * place of the one that matters least. Under the lock. */
static struct slot *
find(struct ratelimit *rl, const void *key, size_t len, uint64_t now, int create)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	if (len > RATELIMIT_KEY_MAX)
		len = RATELIMIT_KEY_MAX;
	crypto_shorthash(h, key, len, rl->hash_key);
	memcpy(&v, h, sizeof(v));
	struct slot *set = &rl->slots[(v & (rl->nsets - 1)) * RATELIMIT_WAYS], *victim = NULL;
	for (size_t i = 0; i < RATELIMIT_WAYS; i++) {
		struct slot *s = &set[i];
		if (s->len == len && memcmp(s->key, key, len) == 0)
			return s;
		if (s->len == 0) {
			if (victim == NULL || victim->len != 0)
				victim = s;
		} else if (victim == NULL || (victim->len != 0 && less_worth(rl, s, victim, now))) {
			victim = s;
		}
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	memcpy(victim->key, key, len);
	victim->len = (uint8_t)len;
	victim->tokens = rl->burst;
	victim->last_ms = now;
	return victim;
}

unsigned
ratelimit_take(struct ratelimit *rl, const void *key, size_t len, uint64_t now)
{
	unsigned wait = 0;

	if (rl->burst <= 0 || len == 0)
		return 0;
	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, key, len, now, 1);
	double t = refilled(rl, s, now);
	if (t >= 1) {
		s->tokens = t - 1;
	} else {
		double ms = rl->per_ms > 0 ? (1 - t) / rl->per_ms : MS_PER_MIN;
		double secs = ms / MS_PER_S;
		wait = secs < 1 ? 1 : (unsigned)secs + (secs > (unsigned)secs);
		s->tokens = t;
	}
	s->last_ms = now > s->last_ms ? now : s->last_ms;
	pthread_mutex_unlock(&rl->lock);
	return wait;
}

void
ratelimit_refund(struct ratelimit *rl, const void *key, size_t len, uint64_t now)
{
	if (rl->burst <= 0 || len == 0)
		return;
	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, key, len, now, 0);
	if (s != NULL) {
		double t = refilled(rl, s, now) + 1;
		s->tokens = t < rl->burst ? t : rl->burst;
		s->last_ms = now > s->last_ms ? now : s->last_ms;
	}
	pthread_mutex_unlock(&rl->lock);
}

int
ratelimit_hold(struct ratelimit *rl, const void *key, size_t len, unsigned max)
{
	int rc = 0;

	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, key, len, 0, 1);
	if (s->held >= max || s->held == UINT16_MAX)
		rc = -1;
	else
		s->held++;
	pthread_mutex_unlock(&rl->lock);
	return rc;
}

void
ratelimit_release(struct ratelimit *rl, const void *key, size_t len)
{
	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, key, len, 0, 0);
	if (s != NULL && s->held > 0)
		s->held--;
	pthread_mutex_unlock(&rl->lock);
}

void
ratelimit_mark(struct ratelimit *rl, const void *key, size_t len, uint64_t now)
{
	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, key, len, now, 1);
	s->marked = 1;
	pthread_mutex_unlock(&rl->lock);
}

int
ratelimit_marked(struct ratelimit *rl, const void *key, size_t len)
{
	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, key, len, 0, 0);
	int marked = s != NULL && s->marked;
	pthread_mutex_unlock(&rl->lock);
	return marked;
}

size_t
ratelimit_addr_key(const char *ip, uint8_t out[RATELIMIT_KEY_MAX])
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t a[16];

	if (inet_pton(AF_INET, ip, a) == 1) {
		out[0] = ADDR_TAG_V4;
		memcpy(out + 1, a, 4);
		return 5;
	}
	if (inet_pton(AF_INET6, ip, a) == 1) {
		if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0) {
			out[0] = ADDR_TAG_V4;
			memcpy(out + 1, a + 12, 4);
			return 5;
		}
		out[0] = ADDR_TAG_V6;
		memcpy(out + 1, a, RATELIMIT_IPV6_GROUP_BYTES);
		return 1 + RATELIMIT_IPV6_GROUP_BYTES;
	}
	size_t n = strlen(ip);
	if (n > RATELIMIT_KEY_MAX - 1)
		n = RATELIMIT_KEY_MAX - 1;
	out[0] = ADDR_TAG_TEXT;
	memcpy(out + 1, ip, n);
	return n + 1;
}
