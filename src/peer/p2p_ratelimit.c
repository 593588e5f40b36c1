/* p2p_ratelimit.c — token buckets per source of handshakes, in a
 * set-associative table that evicts the fullest bucket, never a drained
 * one. */
#include "hychat/p2p_ratelimit.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hychat/util.h"

#define RATE_SETS (P2P_RATE_ADDRS / P2P_RATE_WAYS)
#define FAMILY_NONE 0
#define FAMILY_V4 4
#define FAMILY_V6 6

struct bucket {
	uint8_t src[P2P_RATE_SOURCE_BYTES];
	int used;
	double tokens;
	uint64_t last_ms;
};

struct p2p_ratelimit {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct bucket b[P2P_RATE_ADDRS];
};

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

struct p2p_ratelimit *
p2p_ratelimit_new(void)
{
	struct p2p_ratelimit *rl;

	if (sodium_init() < 0)
		return NULL;
	rl = xcalloc(1, sizeof(*rl));
	crypto_shorthash_keygen(rl->hash_key);
	return rl;
}

void
p2p_ratelimit_free(struct p2p_ratelimit *rl)
{
	free(rl);
}

void
p2p_ratelimit_source(const char *addr, uint8_t src[P2P_RATE_SOURCE_BYTES])
{
	uint8_t a[16];

	memset(src, 0, P2P_RATE_SOURCE_BYTES);
	if (inet_pton(AF_INET, addr, a) == 1) {
		src[0] = FAMILY_V4;
		memcpy(src + 1, a, 4);
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0) {
			src[0] = FAMILY_V4;
			memcpy(src + 1, a + sizeof(v4_mapped), 4);
		} else {
			src[0] = FAMILY_V6;
			memcpy(src + 1, a, P2P_RATE_IPV6_PREFIX);
		}
	} else
		src[0] = FAMILY_NONE;
}

/* The bucket's tokens at now. */
static double
refill(const struct bucket *b, uint64_t now_ms)
{
	double t = b->tokens;

	if (now_ms > b->last_ms)
		t += (double)(now_ms - b->last_ms) * P2P_RATE_PER_S / 1000.0;
	return t > P2P_RATE_BURST ? P2P_RATE_BURST : t;
}

/* src's bucket: its own, else a free slot of its set, else the fullest. */
static struct bucket *
find(struct p2p_ratelimit *rl, const uint8_t src[P2P_RATE_SOURCE_BYTES], uint64_t now_ms)
{
	uint8_t h[crypto_shorthash_BYTES];
	struct bucket *set, *pick = NULL;
	double most = -1.0;
	uint64_t n = 0;

	crypto_shorthash(h, src, P2P_RATE_SOURCE_BYTES, rl->hash_key);
	for (size_t i = 0; i < sizeof(h); i++)
		n = n << 8 | h[i];
	set = &rl->b[(n % RATE_SETS) * P2P_RATE_WAYS];
	for (size_t w = 0; w < P2P_RATE_WAYS; w++)
		if (set[w].used && memcmp(set[w].src, src, P2P_RATE_SOURCE_BYTES) == 0)
			return &set[w];
	for (size_t w = 0; w < P2P_RATE_WAYS; w++) {
		double t = set[w].used ? refill(&set[w], now_ms) : P2P_RATE_BURST + 1.0;
		if (t > most) {
			most = t;
			pick = &set[w];
		}
	}
	memcpy(pick->src, src, P2P_RATE_SOURCE_BYTES);
	pick->used = 1;
	pick->tokens = P2P_RATE_BURST;
	pick->last_ms = now_ms;
	return pick;
}

int
p2p_ratelimit_allow(struct p2p_ratelimit *rl, const char *addr, uint64_t now_ms)
{
	uint8_t src[P2P_RATE_SOURCE_BYTES];
	struct bucket *b;

	p2p_ratelimit_source(addr, src);
	b = find(rl, src, now_ms);
	b->tokens = refill(b, now_ms);
	if (now_ms > b->last_ms)
		b->last_ms = now_ms;
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}
