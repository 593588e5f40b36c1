/* test_p2p_ratelimit.c — the handshake budget per source: a burst, then
 * the rate; IPv4 by the whole address, IPv6 by its /64, a v4-mapped
 * address as its IPv4 one; and a drained source stays drained however
 * many other sources come by (a collision never resets a bucket). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hychat/p2p_ratelimit.h"

#define T0 1000000

static int
same_source(const char *a, const char *b)
{
	uint8_t sa[P2P_RATE_SOURCE_BYTES], sb[P2P_RATE_SOURCE_BYTES];

	p2p_ratelimit_source(a, sa);
	p2p_ratelimit_source(b, sb);
	return memcmp(sa, sb, sizeof(sa)) == 0;
}

/* Handshakes from addr at now that pass, out of tries. */
static int
allowed(struct p2p_ratelimit *rl, const char *addr, uint64_t now, int tries)
{
	int n = 0;

	for (int i = 0; i < tries; i++)
		n += p2p_ratelimit_allow(rl, addr, now);
	return n;
}

static void
test_sources(void **state)
{
	(void)state;
	assert_true(same_source("192.0.2.1", "192.0.2.1"));
	assert_false(same_source("192.0.2.1", "192.0.2.2"));
	assert_true(same_source("::ffff:192.0.2.1", "192.0.2.1"));
	assert_false(same_source("::ffff:192.0.2.1", "192.0.2.2"));
	assert_true(same_source("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"));
	assert_true(same_source("2001:db8:1:2::1", "2001:0db8:0001:0002:0:0:0:9"));
	assert_false(same_source("2001:db8:1:2::1", "2001:db8:1:3::1"));
	assert_false(same_source("2001:db8::1", "::1"));
	/* An IPv6 address whose low bits spell an IPv4 one is not it. */
	assert_false(same_source("2001:db8::c000:201", "192.0.2.1"));
	/* Text that is no address: one source, none of the others. */
	assert_true(same_source("?", "not an address"));
	assert_false(same_source("?", "0.0.0.0"));
	assert_false(same_source("?", "::"));
}

static void
test_burst_then_rate(void **state)
{
	struct p2p_ratelimit *rl = p2p_ratelimit_new();

	(void)state;
	assert_int_equal(allowed(rl, "192.0.2.1", T0, P2P_RATE_BURST + 10), P2P_RATE_BURST);
	/* 20 a second: one every 50 ms. */
	assert_int_equal(allowed(rl, "192.0.2.1", T0 + 49, 3), 0);
	assert_int_equal(allowed(rl, "192.0.2.1", T0 + 50, 3), 1);
	assert_int_equal(allowed(rl, "192.0.2.1", T0 + 1050, 100), P2P_RATE_PER_S);
	/* Another address has its own budget; the clock going back gives
	 * nothing. */
	assert_int_equal(allowed(rl, "192.0.2.2", T0, 1), 1);
	assert_int_equal(allowed(rl, "192.0.2.1", T0, 1), 0);
	/* Idle long enough, a whole burst again, never more. */
	assert_int_equal(allowed(rl, "192.0.2.1", T0 + 3600000, 1000), P2P_RATE_BURST);
	p2p_ratelimit_free(rl);
}

static void
test_ipv6_by_64(void **state)
{
	struct p2p_ratelimit *rl = p2p_ratelimit_new();
	char a[64];
	int n = 0;

	(void)state;
	/* Cycling through the 2^64 addresses of one /64 gains nothing. */
	for (int i = 0; i < P2P_RATE_BURST * 4; i++) {
		snprintf(a, sizeof(a), "2001:db8:aa:bb:%x::%x", i, i + 1);
		n += p2p_ratelimit_allow(rl, a, T0);
	}
	assert_int_equal(n, P2P_RATE_BURST);
	assert_int_equal(allowed(rl, "2001:db8:aa:bc::1", T0, 1), 1);
	/* A v4-mapped address draws on its IPv4 address's budget. */
	assert_int_equal(allowed(rl, "198.51.100.7", T0, P2P_RATE_BURST), P2P_RATE_BURST);
	assert_int_equal(allowed(rl, "::ffff:198.51.100.7", T0, 1), 0);
	p2p_ratelimit_free(rl);
}

/* A drained source, then many times more sources than the table holds,
 * each passing one handshake: every set fills and evicts, yet the drained
 * bucket is never the one evicted, so its source stays refused. */
static void
test_no_reset_by_other_sources(void **state)
{
	struct p2p_ratelimit *rl = p2p_ratelimit_new();
	char a[64];

	(void)state;
	assert_int_equal(allowed(rl, "203.0.113.5", T0, P2P_RATE_BURST), P2P_RATE_BURST);
	for (int i = 0; i < P2P_RATE_ADDRS * 4; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
		assert_int_equal(p2p_ratelimit_allow(rl, a, T0), 1);
	}
	assert_int_equal(allowed(rl, "203.0.113.5", T0, 1), 0);
	/* And those sources were remembered as well as room allows: the last
	 * ones are still charged. */
	assert_int_equal(allowed(rl, a, T0, P2P_RATE_BURST), P2P_RATE_BURST - 1);
	p2p_ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_ipv6_by_64),
		cmocka_unit_test(test_no_reset_by_other_sources),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
