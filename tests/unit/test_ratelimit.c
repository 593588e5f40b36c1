/* test_ratelimit.c — the token buckets (ratelimit.c) and the login guard
 * over them (login_guard.c): refill and Retry-After, refunds, holds and
 * marks, address keys (IPv4, v4-mapped, IPv6 by /64), a table that does
 * not grow and does not give a throttled key a fresh bucket when flooded,
 * and the guard's decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/login_guard.h"
#include "hychat/ratelimit.h"

#define NOW 1000000
#define MIN_MS 60000

static void
test_a_bucket_gives_its_burst_then_says_when(void **state)
{
	struct ratelimit *rl = ratelimit_new(64, 6, 3); /* one token every 10 s */

	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, "a", 1, NOW), 0);
	assert_int_equal(ratelimit_take(rl, "a", 1, NOW), 10);
	assert_int_equal(ratelimit_take(rl, "a", 1, NOW + 4000), 6);
	assert_int_equal(ratelimit_take(rl, "a", 1, NOW + 9500), 1);
	assert_int_equal(ratelimit_take(rl, "a", 1, NOW + 10000), 0);
	assert_int_equal(ratelimit_take(rl, "a", 1, NOW + 10000), 10);
	/* a long pause refills up to the burst, not beyond */
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, "a", 1, NOW + 10 * MIN_MS), 0);
	assert_true(ratelimit_take(rl, "a", 1, NOW + 10 * MIN_MS) > 0);
	/* another key has its own bucket */
	assert_int_equal(ratelimit_take(rl, "b", 1, NOW), 0);
	ratelimit_free(rl);
}

static void
test_a_refund_gives_a_token_back_up_to_the_burst(void **state)
{
	struct ratelimit *rl = ratelimit_new(64, 1, 2);

	assert_int_equal(ratelimit_take(rl, "k", 1, NOW), 0);
	assert_int_equal(ratelimit_take(rl, "k", 1, NOW), 0);
	assert_true(ratelimit_take(rl, "k", 1, NOW) > 0);
	ratelimit_refund(rl, "k", 1, NOW);
	assert_int_equal(ratelimit_take(rl, "k", 1, NOW), 0);
	for (int i = 0; i < 10; i++)
		ratelimit_refund(rl, "k", 1, NOW);
	assert_int_equal(ratelimit_take(rl, "k", 1, NOW), 0);
	assert_int_equal(ratelimit_take(rl, "k", 1, NOW), 0);
	assert_true(ratelimit_take(rl, "k", 1, NOW) > 0);
	ratelimit_refund(rl, "unknown", 7, NOW); /* nothing to give back to */
	ratelimit_free(rl);
}

static void
test_a_burst_of_zero_turns_the_buckets_off(void **state)
{
	struct ratelimit *rl = ratelimit_new(64, 0, 0);

	for (int i = 0; i < 1000; i++)
		assert_int_equal(ratelimit_take(rl, "k", 1, NOW), 0);
	ratelimit_free(rl);
}

static void
test_holds_count_jobs_up_to_a_max_and_marks_stick(void **state)
{
	struct ratelimit *rl = ratelimit_new(64, 1, 1);

	assert_int_equal(ratelimit_hold(rl, "k", 1, 2), 0);
	assert_int_equal(ratelimit_hold(rl, "k", 1, 2), 0);
	assert_int_equal(ratelimit_hold(rl, "k", 1, 2), -1);
	assert_int_equal(ratelimit_hold(rl, "j", 1, 2), 0);
	ratelimit_release(rl, "k", 1);
	assert_int_equal(ratelimit_hold(rl, "k", 1, 2), 0);
	ratelimit_release(rl, "nobody", 6);
	assert_false(ratelimit_marked(rl, "k", 1));
	ratelimit_mark(rl, "k", 1, NOW);
	assert_true(ratelimit_marked(rl, "k", 1));
	assert_false(ratelimit_marked(rl, "j", 1));
	ratelimit_free(rl);
}

/* One set of 8 slots: every key collides. A key that has used up its
 * bucket keeps it while thousands of others pass, and two colliding keys
 * never share a bucket. */
static void
test_a_flood_of_keys_neither_grows_the_table_nor_frees_a_throttled_key(void **state)
{
	struct ratelimit *rl = ratelimit_new(RATELIMIT_WAYS, 1, 5);
	char key[32];

	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(rl, "attacker", 8, NOW), 0);
	assert_true(ratelimit_take(rl, "attacker", 8, NOW) > 0);
	for (int i = 0; i < 100000; i++) {
		int n = snprintf(key, sizeof(key), "other-%d", i);
		assert_int_equal(ratelimit_take(rl, key, (size_t)n, NOW), 0);
	}
	assert_true(ratelimit_take(rl, "attacker", 8, NOW) > 0);
	assert_int_equal(ratelimit_take(rl, "attackez", 8, NOW), 0);
	ratelimit_free(rl);
}

static void
test_long_keys_are_cut_not_overrun(void **state)
{
	struct ratelimit *rl = ratelimit_new(64, 1, 1);
	char a[200], b[200];

	memset(a, 'x', sizeof(a));
	memcpy(b, a, sizeof(b));
	b[199] = 'y'; /* differs only past RATELIMIT_KEY_MAX */
	assert_int_equal(ratelimit_take(rl, a, sizeof(a), NOW), 0);
	assert_true(ratelimit_take(rl, b, sizeof(b), NOW) > 0);
	ratelimit_free(rl);
}

static size_t
key_of(const char *ip, uint8_t out[RATELIMIT_KEY_MAX])
{
	return ratelimit_addr_key(ip, out);
}

static void
test_address_keys_group_ipv6_by_64_and_unmap_ipv4(void **state)
{
	uint8_t a[RATELIMIT_KEY_MAX], b[RATELIMIT_KEY_MAX];
	size_t na, nb;

	na = key_of("192.0.2.7", a);
	nb = key_of("::ffff:192.0.2.7", b);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	nb = key_of("192.0.2.8", b);
	assert_true(na != nb || memcmp(a, b, na) != 0);
	na = key_of("2001:db8:1:2::1", a);
	nb = key_of("2001:db8:1:2:ffff:ffff:ffff:ffff", b);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	nb = key_of("2001:db8:1:3::1", b);
	assert_true(memcmp(a, b, na) != 0);
	/* an IPv4 address and an IPv6 /64 that starts with the same bytes */
	na = key_of("32.1.13.184", a);
	nb = key_of("2001:db8::", b);
	assert_true(na != nb || memcmp(a, b, na) != 0);
	na = key_of("-", a);
	assert_true(na >= 1);
	char junk[300];
	memset(junk, 'z', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	assert_true(key_of(junk, a) <= RATELIMIT_KEY_MAX);
}

static struct login_guard *
guard(unsigned pair_burst, unsigned account_burst, unsigned per_addr, unsigned max_jobs)
{
	struct login_guard_config c;

	login_guard_defaults(&c);
	c.addr_burst = 100;
	c.pair_burst = pair_burst;
	c.account_burst = account_burst;
	c.jobs_per_addr = per_addr;
	c.max_jobs = max_jobs;
	return login_guard_new(&c);
}

/* Fails one attempt; returns the verdict. */
static enum login_guard_verdict
fail_once(struct login_guard *g, const char *ip, const char *user, unsigned *retry)
{
	enum login_guard_verdict v = login_guard_begin(g, ip, user, NOW, retry);
	if (v == LOGIN_GUARD_OK)
		login_guard_end(g, ip, user, LOGIN_GUARD_FAILURE, NOW);
	return v;
}

static void
test_the_guard_throttles_failures_per_account_and_address(void **state)
{
	struct login_guard *g = guard(3, 100, 2, 64);
	unsigned retry = 0;

	for (int i = 0; i < 3; i++)
		assert_int_equal(fail_once(g, "10.0.0.1", "bob", &retry), LOGIN_GUARD_OK);
	assert_int_equal(fail_once(g, "10.0.0.1", "bob", &retry), LOGIN_GUARD_THROTTLED);
	assert_true(retry >= 1);
	/* bob from elsewhere, and carol from there, are not held up */
	assert_int_equal(fail_once(g, "10.0.0.2", "bob", &retry), LOGIN_GUARD_OK);
	assert_int_equal(fail_once(g, "10.0.0.1", "carol", &retry), LOGIN_GUARD_OK);
	/* successes cost nothing */
	for (int i = 0; i < 50; i++) {
		assert_int_equal(
		    login_guard_begin(g, "10.0.0.3", "dave", NOW, &retry), LOGIN_GUARD_OK);
		login_guard_end(g, "10.0.0.3", "dave", LOGIN_GUARD_SUCCESS, NOW);
	}
	assert_int_equal(login_guard_jobs(g), 0);
	login_guard_free(g);
}

static void
test_an_emptied_account_still_admits_the_address_it_knows(void **state)
{
	struct login_guard *g = guard(100, 4, 2, 64);
	unsigned retry = 0;
	char ip[32];

	assert_int_equal(login_guard_begin(g, "10.0.0.9", "bob", NOW, &retry), LOGIN_GUARD_OK);
	login_guard_end(g, "10.0.0.9", "bob", LOGIN_GUARD_SUCCESS, NOW);
	for (int i = 0; i < 4; i++) {
		snprintf(ip, sizeof(ip), "10.1.0.%d", i);
		assert_int_equal(fail_once(g, ip, "bob", &retry), LOGIN_GUARD_OK);
	}
	assert_int_equal(fail_once(g, "10.1.0.99", "bob", &retry), LOGIN_GUARD_THROTTLED);
	assert_int_equal(login_guard_begin(g, "10.0.0.9", "bob", NOW, &retry), LOGIN_GUARD_OK);
	login_guard_end(g, "10.0.0.9", "bob", LOGIN_GUARD_SUCCESS, NOW);
	login_guard_free(g);
}

static void
test_the_guard_caps_jobs_per_address_and_in_all(void **state)
{
	struct login_guard *g = guard(100, 100, 2, 3);
	unsigned retry = 0;

	assert_int_equal(login_guard_begin(g, "10.0.0.1", "a", NOW, &retry), LOGIN_GUARD_OK);
	assert_int_equal(login_guard_begin(g, "10.0.0.1", "b", NOW, &retry), LOGIN_GUARD_OK);
	assert_int_equal(login_guard_begin(g, "10.0.0.1", "c", NOW, &retry), LOGIN_GUARD_BUSY);
	assert_int_equal(retry, LOGIN_GUARD_BUSY_RETRY_S);
	assert_int_equal(login_guard_begin(g, "10.0.0.2", "a", NOW, &retry), LOGIN_GUARD_OK);
	assert_int_equal(login_guard_begin(g, "10.0.0.3", "a", NOW, &retry), LOGIN_GUARD_BUSY);
	assert_int_equal(login_guard_jobs(g), 3);
	login_guard_end(g, "10.0.0.1", "a", LOGIN_GUARD_FAILURE, NOW);
	assert_int_equal(login_guard_begin(g, "10.0.0.3", "a", NOW, &retry), LOGIN_GUARD_OK);
	login_guard_end(g, "10.0.0.1", "b", LOGIN_GUARD_VOID, NOW);
	login_guard_end(g, "10.0.0.2", "a", LOGIN_GUARD_FAILURE, NOW);
	login_guard_end(g, "10.0.0.3", "a", LOGIN_GUARD_FAILURE, NOW);
	assert_int_equal(login_guard_jobs(g), 0);
	login_guard_free(g);
}

static void
test_guard_options_parse_by_flag_name(void **state)
{
	struct login_guard_config c;
	char *err = NULL;

	login_guard_defaults(&c);
	assert_int_equal(c.max_jobs, 64);
	assert_int_equal(login_guard_option(&c, "max-hash-jobs", "7", &err), 1);
	assert_int_equal(c.max_jobs, 7);
	assert_int_equal(login_guard_option(&c, "login-pair-burst", "0", &err), 1);
	assert_int_equal(c.pair_burst, 0);
	assert_int_equal(login_guard_option(&c, "ttl", "7", &err), 0);
	assert_int_equal(login_guard_option(&c, "max-hash-jobs", "-1", &err), -1);
	assert_non_null(err);
	free(err);
	assert_int_equal(login_guard_option(&c, "max-hash-jobs", "", &err), -1);
	free(err);
	assert_int_equal(login_guard_option(&c, "max-hash-jobs", "1000001", &err), -1);
	free(err);
	assert_int_equal(login_guard_option(&c, "max-hash-jobs", "9x", &err), -1);
	free(err);
	assert_int_equal(login_guard_option(&c, "max-hash-jobs", "0", &err), -1);
	assert_string_equal(err, "expected a number from 1 to 1000000");
	free(err);
	assert_int_equal(login_guard_option(&c, "login-addr-burst", "0", &err), 1);
	assert_int_equal(c.max_jobs, 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_bucket_gives_its_burst_then_says_when),
		cmocka_unit_test(test_a_refund_gives_a_token_back_up_to_the_burst),
		cmocka_unit_test(test_a_burst_of_zero_turns_the_buckets_off),
		cmocka_unit_test(test_holds_count_jobs_up_to_a_max_and_marks_stick),
		cmocka_unit_test(
		    test_a_flood_of_keys_neither_grows_the_table_nor_frees_a_throttled_key),
		cmocka_unit_test(test_long_keys_are_cut_not_overrun),
		cmocka_unit_test(test_address_keys_group_ipv6_by_64_and_unmap_ipv4),
		cmocka_unit_test(test_the_guard_throttles_failures_per_account_and_address),
		cmocka_unit_test(test_an_emptied_account_still_admits_the_address_it_knows),
		cmocka_unit_test(test_the_guard_caps_jobs_per_address_and_in_all),
		cmocka_unit_test(test_guard_options_parse_by_flag_name),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
