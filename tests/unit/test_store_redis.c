/* test_store_redis.c — the Redis store's URLs: redis://HOST[:PORT][/DB]
 * and redis-sentinel://HOST[:PORT][,...]/MASTER, good and bad, each part
 * at its bounds. Numeric hosts only, so no resolver is asked. Then its
 * scripts' flag line and the presence bucket of a name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/tracker/store_redis.h"
#include "../../src/tracker/store_redis_lua.h"

static void
test_redis_urls(void **state)
{
	struct redis_addr a;
	char *cause = NULL;

	(void)state;
	assert_int_equal(redis_addr_parse("redis://127.0.0.1", &a, &cause), 0);
	assert_string_equal(a.host, "127.0.0.1");
	assert_int_equal(a.port, REDIS_DEFAULT_PORT);
	assert_int_equal(a.db, 0);
	assert_int_equal(redis_addr_parse("redis://127.0.0.1:6390/15", &a, &cause), 0);
	assert_int_equal(a.port, 6390);
	assert_int_equal(a.db, 15);
	assert_int_equal(redis_addr_parse("redis://::1", &a, &cause), -1); /* ':' is the port */
	free(cause);
	static const char *const bad[] = { "redis://", "redis://:6379",
		"redis://127.0.0.1:", "redis://127.0.0.1:0", "redis://127.0.0.1:65536",
		"redis://127.0.0.1:12x", "redis://127.0.0.1/x", "redis://127.0.0.1/-1",
		"redis://127.0.0.1/ 1", "http://127.0.0.1", "redis:/127.0.0.1", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cause = NULL;
		assert_int_equal(redis_addr_parse(bad[i], &a, &cause), -1);
		assert_non_null(cause);
		free(cause);
	}
}

static void
test_sentinel_urls(void **state)
{
	struct redis_sentinels sn;
	char *cause = NULL;

	(void)state;
	assert_int_equal(
	    redis_sentinel_parse(
	        "redis-sentinel://127.0.0.1:1,127.0.0.2,127.0.0.3:3/main", &sn, &cause),
	    0);
	assert_int_equal(sn.n, 3);
	assert_string_equal(sn.master, "main");
	assert_int_equal(sn.at[0].port, 1);
	assert_int_equal(sn.at[1].port, REDIS_SENTINEL_PORT);
	assert_string_equal(sn.at[2].host, "127.0.0.3");
	char many[1024] = "redis-sentinel://";
	for (int i = 0; i <= REDIS_MAX_SENTINELS; i++)
		strcat(many, i == 0 ? "127.0.0.1" : ",127.0.0.1");
	strcat(many, "/m");
	static const char *const bad[] = { "redis-sentinel://127.0.0.1", "redis-sentinel:///m",
		"redis-sentinel://127.0.0.1/", "redis-sentinel://127.0.0.1,,127.0.0.2/m",
		"redis-sentinel://127.0.0.1:99999/m", "redis://127.0.0.1/m", NULL };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *url = bad[i] != NULL ? bad[i] : many;
		cause = NULL;
		assert_int_equal(redis_sentinel_parse(url, &sn, &cause), -1);
		assert_non_null(cause);
		free(cause);
	}
	char longname[128] = "redis-sentinel://127.0.0.1/";
	memset(longname + strlen(longname), 'm', REDIS_MASTER_NAME_MAX + 1);
	cause = NULL;
	assert_int_equal(redis_sentinel_parse(longname, &sn, &cause), -1);
	free(cause);
}

/* Every script keeps to one slot and says so: a cluster node checks the
 * scripts that begin with the flag line, and lets the others stray. */
static void
test_every_script_is_flagged_one_slot(void **state)
{
	(void)state;
	for (int i = 0; i < REDIS_SCRIPT_COUNT; i++)
		assert_int_equal(strncmp(redis_script_body(i), "#!lua\n", 6), 0);
}

/* The presence bucket: the length and the last four bytes, weighted 7, 5,
 * 3, 1 (the first bytes of a shorter name), modulo the buckets. */
static void
test_presence_bucket(void **state)
{
	(void)state;
	assert_int_equal(redis_pbucket("alice"), (5 + 108 * 7 + 105 * 5 + 99 * 3 + 101) % 4);
	assert_int_equal(redis_pbucket("ab"), (2 + 97 * 7 + 98 * 5) % 4);
	assert_int_equal(redis_pbucket("x"), (1 + 120 * 7) % 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redis_urls),
		cmocka_unit_test(test_sentinel_urls),
		cmocka_unit_test(test_every_script_is_flagged_one_slot),
		cmocka_unit_test(test_presence_bucket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
