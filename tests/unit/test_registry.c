/* test_registry.c — the tracker's online state: names, peers and expiry,
 * channels and paging, tokens, the sliced sweeper, memory per peer. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/registry.h"
#include "hychat/util.h"

#define NOW 1000000

struct seen {
	size_t n;
	char names[2048][HY_NAME_MAX + 1];
	unsigned ports[2048];
	size_t keylen[2048];
};

static void
collect(const struct registry_peer *p, void *arg)
{
	struct seen *s = arg;

	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", p->name);
	s->ports[s->n] = p->port;
	s->keylen[s->n] = p->pubkey != NULL ? strlen(p->pubkey) : 0;
	s->n++;
}

static int
setup(void **state)
{
	(void)state;
	return sodium_init() < 0;
}

static void
test_names_are_validated(void **state)
{

	assert_true(hy_name_valid("alice", 5));
	assert_true(hy_name_valid("A.b_c-9", 7));
	assert_false(hy_name_valid("", 0));
	assert_false(hy_name_valid("al ice", 6));
	assert_false(hy_name_valid("al/ice", 6));
	assert_false(hy_name_valid("alicé", strlen("alicé")));
	assert_true(hy_name_valid("abcdefghijklmnopqrstuvwxyz012345", 32));
	assert_false(hy_name_valid("abcdefghijklmnopqrstuvwxyz0123456", 33));
	/* an embedded NUL is not hidden by a shorter strlen */
	assert_false(hy_name_valid("bob\0x", 5));
}

static void
test_hash_prefix_names_the_same_channel(void **state)
{
	char a[HY_CHANNEL_MAX + 1], b[HY_CHANNEL_MAX + 1];
	char longest[HY_CHANNEL_MAX + 2];

	assert_int_equal(hy_channel_canon("#general", 8, a), 0);
	assert_int_equal(hy_channel_canon("general", 7, b), 0);
	assert_string_equal(a, "general");
	assert_string_equal(b, "general");
	assert_int_equal(hy_channel_canon("#", 1, a), -1);
	assert_int_equal(hy_channel_canon("", 0, a), -1);
	assert_int_equal(hy_channel_canon("##x", 3, a), -1);
	assert_int_equal(hy_channel_canon("a b", 3, a), -1);
	memset(longest, 'x', sizeof(longest));
	longest[0] = '#';
	assert_int_equal(hy_channel_canon(longest, HY_CHANNEL_MAX + 1, a), 0);
	assert_int_equal(strlen(a), HY_CHANNEL_MAX);
	assert_int_equal(hy_channel_canon(longest + 1, HY_CHANNEL_MAX + 1, a), -1);
}

static void
test_peer_vanishes_at_expiry_before_any_sweep(void **state)
{
	struct registry *r = registry_new();
	struct seen s = { 0 };
	int more;

	uint32_t id = registry_peer_set(r, "alice", "10.0.0.1", 9001, NOW + 2000);
	assert_true(id > 0);
	assert_int_equal(registry_peer_set(r, "alice", "10.0.0.2", 9002, NOW + 2000), id);
	assert_int_equal(registry_online(r), 1);
	assert_int_equal(registry_list(r, NULL, NULL, 10, NOW, collect, &s, &more), 1);
	assert_int_equal(s.ports[0], 9002);
	assert_true(registry_peer_online(r, "alice", NOW + 1999));
	assert_false(registry_peer_online(r, "alice", NOW + 2000));
	s.n = 0;
	assert_int_equal(registry_list(r, NULL, NULL, 10, NOW + 2000, collect, &s, &more), 0);
	/* a renewal after expiry is refused: the peer must submit again */
	assert_int_equal(registry_peer_renew(r, "alice", NOW + 2000, NOW + 4000), -1);
	assert_int_equal(registry_peer_renew(r, "bob", NOW, NOW + 4000), -1);
	assert_int_equal(registry_online(r), 1);
	assert_int_equal(registry_sweep(r, NOW + 2000, 1 << 20), 1);
	assert_int_equal(registry_online(r), 0);
	assert_int_equal(registry_peer_set(r, "alice", "10.0.0.1", 9001, NOW + 9000), id);
	assert_int_equal(registry_online(r), 1);
	assert_int_equal(registry_peer_renew(r, "alice", NOW + 8000, NOW + 20000), 0);
	assert_true(registry_peer_online(r, "alice", NOW + 19999));
	registry_peer_drop(r, "alice");
	registry_peer_drop(r, "nobody");
	assert_int_equal(registry_online(r), 0);
	registry_free(r);
}

static void
test_channel_pages_in_name_order(void **state)
{
	struct registry *r = registry_new();
	static struct seen s;
	char name[HY_NAME_MAX + 1], after[HY_NAME_MAX + 1] = "";
	int more, order[1000];

	/* joined in a shuffled order, every third member offline */
	for (int i = 0; i < 1000; i++)
		order[i] = i;
	for (int i = 999; i > 0; i--) {
		int j = (int)randombytes_uniform((uint32_t)i + 1), tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "u%04d", order[i]);
		assert_int_equal(registry_join(r, "big", name), 1);
		if (order[i] % 3 != 0)
			registry_peer_set(
			    r, name, "127.0.0.1", 1000 + (unsigned)order[i], NOW + 1000);
	}
	assert_int_equal(registry_join(r, "big", "u0001"), 0);

	size_t total = 0;
	int pages = 0;
	do {
		s.n = 0;
		long n =
		    registry_list(r, "big", after[0] ? after : NULL, 100, NOW, collect, &s, &more);
		assert_true(n >= 0 && n <= 100);
		for (size_t i = 1; i < s.n; i++)
			assert_true(strcmp(s.names[i - 1], s.names[i]) < 0);
		if (s.n > 0) {
			if (after[0])
				assert_true(strcmp(after, s.names[0]) < 0);
			snprintf(after, sizeof(after), "%s", s.names[s.n - 1]);
		}
		total += s.n;
		pages++;
	} while (more);
	assert_int_equal(total, 666);
	assert_int_equal(pages, 7);
	assert_int_equal(registry_list(r, "nope", NULL, 10, NOW, collect, &s, &more), -1);
	registry_free(r);
}

static void
test_after_a_name_not_in_the_list(void **state)
{
	struct registry *r = registry_new();
	struct seen s = { 0 };
	int more;

	registry_join(r, "c", "b");
	registry_join(r, "c", "d");
	registry_peer_set(r, "b", "::1", 1, NOW + 10);
	registry_peer_set(r, "d", "::1", 2, NOW + 10);
	assert_int_equal(registry_list(r, "c", "c", 10, NOW, collect, &s, &more), 1);
	assert_string_equal(s.names[0], "d");
	assert_false(more);
	s.n = 0;
	assert_int_equal(registry_list(r, "c", NULL, 1, NOW, collect, &s, &more), 1);
	assert_string_equal(s.names[0], "b");
	assert_true(more);
	registry_free(r);
}

/* A channel's members, online or not, for whom a message is owed; an
 * offline one comes without an address. */
static void
test_members_lists_offline_ones_without_address(void **state)
{
	struct registry *r = registry_new();
	struct seen s = { 0 };
	int more;

	registry_join(r, "c", "alice");
	registry_join(r, "c", "bob");
	registry_join(r, "c", "carol");
	registry_peer_set(r, "alice", "1.1.1.1", 1, NOW + 10);
	registry_peer_set(r, "carol", "1.1.1.1", 3, NOW + 5);
	assert_int_equal(registry_list(r, "c", NULL, 10, NOW + 7, collect, &s, &more), 1);
	s.n = 0;
	assert_int_equal(registry_list_members(r, "c", NULL, 10, NOW + 7, collect, &s, &more), 3);
	assert_string_equal(s.names[1], "bob");
	assert_int_equal(s.ports[0], 1);
	assert_int_equal(s.ports[1], 0);
	assert_int_equal(s.ports[2], 0);
	assert_false(more);
	assert_int_equal(registry_list_members(r, NULL, NULL, 10, NOW, collect, &s, &more), -1);
	assert_int_equal(registry_list_members(r, "nope", NULL, 10, NOW, collect, &s, &more), -1);
	registry_free(r);
}

static void
test_all_peers_lists_only_online_ones(void **state)
{
	struct registry *r = registry_new();
	struct seen s = { 0 };
	int more;

	registry_peer_set(r, "carol", "1.1.1.1", 3, NOW + 10);
	registry_peer_set(r, "alice", "1.1.1.1", 1, NOW + 10);
	registry_peer_set(r, "bob", "1.1.1.1", 2, NOW + 10);
	registry_join(r, "x", "dave");
	registry_peer_drop(r, "bob");
	assert_int_equal(registry_list(r, NULL, NULL, 10, NOW, collect, &s, &more), 2);
	assert_string_equal(s.names[0], "alice");
	assert_string_equal(s.names[1], "carol");
	registry_free(r);
}

static void
count_channel(const char *name, size_t members, void *arg)
{
	struct seen *s = arg;

	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->ports[s->n++] = (unsigned)members;
}

static void
count_member(const char *name, void *arg)
{
	(void)name;
	(*(size_t *)arg)++;
}

static void
test_channels_page_after_a_name_and_users_count_theirs(void **state)
{
	struct registry *r = registry_new();
	struct seen s = { 0 };
	char name[16];
	int more = 0;

	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "c%02d", i);
		registry_join(r, name, "alice");
		if (i % 2)
			registry_join(r, name, "bob");
	}
	registry_join(r, "c00", "alice"); /* again: no change */
	assert_int_equal(registry_user_channels(r, "alice"), 10);
	assert_int_equal(registry_user_channels(r, "bob"), 5);
	assert_int_equal(registry_user_channels(r, "nobody"), 0);
	assert_true(registry_channel_exists(r, "c03"));
	assert_false(registry_channel_exists(r, "c10"));
	assert_int_equal(registry_channels(r, NULL, 4, count_channel, &s, &more), 4);
	assert_true(more);
	assert_string_equal(s.names[3], "c03");
	assert_int_equal(registry_channels(r, "c03", 4, count_channel, &s, &more), 4);
	assert_string_equal(s.names[4], "c04");
	assert_int_equal(s.ports[5], 2); /* c05 has alice and bob */
	assert_true(more);
	/* after a name that is no channel: from the next one */
	assert_int_equal(registry_channels(r, "c075", 4, count_channel, &s, &more), 2);
	assert_string_equal(s.names[8], "c08");
	assert_false(more);
	assert_int_equal(registry_channels(r, "zzz", 4, count_channel, &s, &more), 0);
	assert_false(more);
	assert_int_equal(registry_leave(r, "c01", "bob"), 0);
	assert_int_equal(registry_user_channels(r, "bob"), 4);
	assert_int_equal(registry_leave(r, "c01", "bob"), -1);
	assert_int_equal(registry_user_channels(r, "bob"), 4);
	registry_free(r);
}

static void
test_leaving_the_last_member_deletes_the_channel(void **state)
{
	struct registry *r = registry_new();
	struct seen s = { 0 };
	size_t called = 0;

	registry_join(r, "zeta", "alice");
	registry_join(r, "alpha", "alice");
	registry_join(r, "alpha", "bob");
	assert_int_equal(registry_channel_count(r), 2);
	int more = 1;
	assert_int_equal(registry_channels(r, NULL, 100, count_channel, &s, &more), 2);
	assert_false(more);
	assert_string_equal(s.names[0], "alpha");
	assert_int_equal(s.ports[0], 2);
	assert_string_equal(s.names[1], "zeta");
	assert_true(registry_is_member(r, "alpha", "bob"));
	assert_false(registry_is_member(r, "zeta", "bob"));
	assert_false(registry_is_member(r, "none", "bob"));
	assert_int_equal(registry_members(r, "alpha", 1, count_member, &called), 2);
	assert_int_equal(called, 1);
	assert_int_equal(registry_leave(r, "zeta", "bob"), -1);
	assert_int_equal(registry_leave(r, "zeta", "alice"), 0);
	assert_int_equal(registry_leave(r, "zeta", "alice"), -1);
	assert_int_equal(registry_channel_count(r), 1);
	assert_int_equal(registry_members(r, "zeta", 10, count_member, &called), -1);
	registry_free(r);
}

static void
test_tokens_stand_for_their_user_until_revoked_or_expired(void **state)
{
	struct registry *r = registry_new();
	char a[REG_TOKEN_TEXT_SIZE], b[REG_TOKEN_TEXT_SIZE];

	registry_token_issue(r, "alice", NOW + 100, a);
	registry_token_issue(r, "bob", NOW + 100, b);
	assert_int_equal(strlen(a), REG_TOKEN_TEXT_SIZE - 1);
	assert_int_equal(
	    strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	    strlen(a));
	assert_string_not_equal(a, b);
	assert_string_equal(registry_token_user(r, a, strlen(a), NOW), "alice");
	assert_string_equal(registry_token_user(r, b, strlen(b), NOW), "bob");
	assert_null(registry_token_user(r, a, strlen(a), NOW + 100));
	assert_null(registry_token_user(r, a, strlen(a) - 1, NOW));
	assert_null(registry_token_user(r, "token_alice", 11, NOW));
	assert_null(registry_token_user(r, "", 0, NOW));
	char forged[REG_TOKEN_TEXT_SIZE];
	memcpy(forged, a, sizeof(forged));
	forged[10] = forged[10] == 'A' ? 'B' : 'A';
	assert_null(registry_token_user(r, forged, strlen(forged), NOW));

	assert_int_equal(registry_token_revoke(r, a, strlen(a), NOW), 0);
	assert_int_equal(registry_token_revoke(r, a, strlen(a), NOW), -1);
	assert_null(registry_token_user(r, a, strlen(a), NOW));
	assert_string_equal(registry_token_user(r, b, strlen(b), NOW), "bob");
	assert_int_equal(registry_token_count(r), 1);
	assert_int_equal(registry_sweep(r, NOW + 100, 1 << 20), 1);
	assert_int_equal(registry_token_count(r), 0);
	registry_free(r);
}

static void
test_oldest_token_goes_past_the_cap(void **state)
{
	struct registry *r = registry_new();
	char t[REG_MAX_TOKENS + 1][REG_TOKEN_TEXT_SIZE];

	for (int i = 0; i <= REG_MAX_TOKENS; i++)
		registry_token_issue(r, "alice", NOW + 100, t[i]);
	assert_int_equal(registry_token_count(r), REG_MAX_TOKENS);
	assert_null(registry_token_user(r, t[0], strlen(t[0]), NOW));
	for (int i = 1; i <= REG_MAX_TOKENS; i++)
		assert_string_equal(registry_token_user(r, t[i], strlen(t[i]), NOW), "alice");
	registry_free(r);
}

static void
test_sweep_reclaims_in_bounded_slices(void **state)
{
	struct registry *r = registry_new();
	char name[HY_NAME_MAX + 1], tok[REG_TOKEN_TEXT_SIZE];
	size_t removed = 0, calls = 0;

	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		registry_peer_set(r, name, "127.0.0.1", 1, NOW + (i % 2 ? 10 : 100000));
		registry_token_issue(r, name, NOW + 10, tok);
	}
	assert_int_equal(registry_online(r), 5000);
	/* one bucket per call: no call may take it all at once */
	size_t first = registry_sweep(r, NOW + 10, 1);
	assert_true(first < 100);
	removed += first;
	while (registry_token_count(r) > 0 || registry_online(r) > 2500) {
		removed += registry_sweep(r, NOW + 10, 64);
		calls++;
		assert_true(calls < 10000);
	}
	assert_true(calls > 10);
	assert_int_equal(removed, 2500 + 5000);
	assert_int_equal(registry_online(r), 2500);
	registry_free(r);
}

static void
test_pubkeys_are_kept_and_listed(void **state)
{
	struct registry *r = registry_new();
	struct seen s = { 0 };
	uint8_t key[32];
	int more;

	randombytes_buf(key, sizeof(key));
	assert_true(registry_pubkey_differs(r, "alice", key, sizeof(key)));
	registry_pubkey_set(r, "alice", key, sizeof(key));
	assert_false(registry_pubkey_differs(r, "alice", key, sizeof(key)));
	assert_true(registry_pubkey_differs(r, "alice", key, 31));
	registry_peer_set(r, "alice", "127.0.0.1", 1, NOW + 10);
	registry_peer_set(r, "bob", "127.0.0.1", 2, NOW + 10);
	registry_list(r, NULL, NULL, 10, NOW, collect, &s, &more);
	assert_int_equal(s.keylen[0], 44); /* base64 of 32 bytes */
	assert_int_equal(s.keylen[1], 0);
	registry_free(r);
}

/* The heap in use, in bytes, from whichever allocator this build has:
 * ASan's own (the CI build: mallinfo2() does not see it), or glibc's.
 * Under valgrind, whose allocator mallinfo2() does not see either (3.19
 * intercepts mallinfo only), it returns 0 and the caller skips. */
#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

static size_t
heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return __sanitizer_get_current_allocated_bytes();
#else
	const char *preload = getenv("LD_PRELOAD");

	if (preload != NULL && strstr(preload, "vgpreload") != NULL)
		return 0;
	return mallinfo2().uordblks;
#endif
}

/* The budget is 2 KB per online peer: user record, table slot, a token,
 * two memberships. The measure must be plausible: a reading that did not
 * grow by the names alone measured nothing, and fails. */
#define PEER_BUDGET_BYTES 2048

static void
test_an_online_peer_costs_under_2_kb(void **state)
{
	enum {
		N = 20000
	};
	char name[HY_NAME_MAX + 1], tok[REG_TOKEN_TEXT_SIZE];
	uint8_t key[32] = { 1 };
	size_t before = heap_in_use();
	struct registry *r = registry_new();

	if (before == 0) {
		registry_free(r);
		skip(); /* valgrind: the ASan build measures it */
	}
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "peer%06d", i);
		registry_peer_set(r, name, "2001:db8::1234:5678", 9000, NOW + 1000);
		registry_token_issue(r, name, NOW + 1000, tok);
		registry_pubkey_set(r, name, key, sizeof(key));
		registry_join(r, "general", name);
		registry_join(r, i % 2 ? "odd" : "even", name);
	}
	size_t after = heap_in_use();
	size_t per_peer = (after - before) / N;
	print_message("%zu bytes per online peer\n", per_peer);
	assert_true(after > before + (size_t)N * HY_NAME_MAX);
	assert_true(per_peer < PEER_BUDGET_BYTES);
	registry_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_are_validated),
		cmocka_unit_test(test_hash_prefix_names_the_same_channel),
		cmocka_unit_test(test_peer_vanishes_at_expiry_before_any_sweep),
		cmocka_unit_test(test_channel_pages_in_name_order),
		cmocka_unit_test(test_after_a_name_not_in_the_list),
		cmocka_unit_test(test_all_peers_lists_only_online_ones),
		cmocka_unit_test(test_members_lists_offline_ones_without_address),
		cmocka_unit_test(test_leaving_the_last_member_deletes_the_channel),
		cmocka_unit_test(test_channels_page_after_a_name_and_users_count_theirs),
		cmocka_unit_test(test_tokens_stand_for_their_user_until_revoked_or_expired),
		cmocka_unit_test(test_oldest_token_goes_past_the_cap),
		cmocka_unit_test(test_sweep_reclaims_in_bounded_slices),
		cmocka_unit_test(test_pubkeys_are_kept_and_listed),
		cmocka_unit_test(test_an_online_peer_costs_under_2_kb),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
