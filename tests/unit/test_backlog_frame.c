/* test_backlog_frame.c — the backlog's request and page: round trips,
 * the page's bounds by count and by bytes, and entries refused for each
 * field that is missing, mistyped, too long or not a name or UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hychat/backlog_frame.h"

static struct json_object *
reparse(struct json_object *o)
{
	struct json_object *r = json_tokener_parse(json_object_to_json_string(o));

	json_object_put(o);
	return r;
}

static void
test_request(void **state)
{
	struct backlog_request r = { "general", "2026-12-01T22:00:00", 42, 1000 }, back;
	struct json_object *m;

	(void)state;
	m = reparse(backlog_request_new(&r));
	assert_int_equal(backlog_request_parse(m, &back), 0);
	assert_string_equal(back.channel, "general");
	assert_string_equal(back.since, "2026-12-01T22:00:00");
	assert_int_equal(back.after, 42);
	assert_int_equal(back.limit, 1000);
	json_object_put(m);
	static const char *const bad[] = {
		"{\"channel\":\"general\",\"since\":\"t\",\"after\":0}",
		"{\"channel\":\"general\",\"since\":\"t\",\"after\":-1,\"limit\":5}",
		"{\"channel\":\"general\",\"since\":\"t\",\"after\":0,\"limit\":0}",
		"{\"channel\":\"general\",\"since\":\"t\",\"after\":0,\"limit\":100001}",
		"{\"channel\":\"gen eral\",\"since\":\"t\",\"after\":0,\"limit\":5}",
		"{\"channel\":\"\",\"since\":\"t\",\"after\":0,\"limit\":5}",
		"{\"channel\":7,\"since\":\"t\",\"after\":0,\"limit\":5}",
		"{\"channel\":\"general\",\"since\":7,\"after\":0,\"limit\":5}",
		"{\"channel\":\"general\",\"since\":\"t\",\"after\":\"0\",\"limit\":5}",
		"{\"channel\":\"gen\\u0000x\",\"since\":\"t\",\"after\":0,\"limit\":5}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = json_tokener_parse(bad[i]);
		assert_non_null(m);
		assert_int_equal(backlog_request_parse(m, &back), -1);
		json_object_put(m);
	}
}

static void
test_page_bounds(void **state)
{
	struct backlog_entry en = { "0123", "alice", "2026-12-01T22:00:00.000001", "hello", "c2ln",
		1 };
	struct json_object *page = backlog_page_new("general"), *entries;
	char channel[HY_CHANNEL_MAX + 1];
	size_t used = 0;
	int64_t next;
	int n = 0;

	(void)state;
	while (backlog_page_add(page, &en, &used))
		n++;
	assert_int_equal(n, BACKLOG_PAGE_MAX);
	backlog_page_set_next(page, 77);
	page = reparse(page);
	assert_int_equal(backlog_page_parse(page, channel, &entries, &next), 0);
	assert_string_equal(channel, "general");
	assert_int_equal(next, 77);
	assert_int_equal(json_object_array_length(entries), BACKLOG_PAGE_MAX);
	struct backlog_entry back;
	assert_int_equal(backlog_entry_parse(entries, 0, &back), 0);
	assert_string_equal(back.id, "0123");
	assert_string_equal(back.from, "alice");
	assert_string_equal(back.text, "hello");
	assert_string_equal(back.sig, "c2ln");
	assert_int_equal(back.action, 1);
	json_object_put(page);

	/* By bytes: large texts fill a page before the count does, but one
	 * always goes in. */
	char *big = malloc(BACKLOG_TEXT_MAX + 1);
	memset(big, 'x', BACKLOG_TEXT_MAX);
	big[BACKLOG_TEXT_MAX] = '\0';
	en.text = big;
	page = backlog_page_new("general");
	used = 0;
	n = 0;
	while (backlog_page_add(page, &en, &used))
		n++;
	assert_true(n >= 1 && n < BACKLOG_PAGE_MAX);
	assert_true(strlen(json_object_to_json_string(page)) < 512 * 1024);
	json_object_put(page);
	free(big);
}

static void
test_entries_refused(void **state)
{
	static const char *const bad[] = {
		"{\"from\":\"alice\",\"time\":\"t\",\"message\":\"m\",\"sig\":\"s\"}",
		"{\"id\":\"i\",\"time\":\"t\",\"message\":\"m\",\"sig\":\"s\"}",
		"{\"id\":\"i\",\"from\":\"alice\",\"message\":\"m\",\"sig\":\"s\"}",
		"{\"id\":\"i\",\"from\":\"alice\",\"time\":\"t\",\"sig\":\"s\"}",
		"{\"id\":\"i\",\"from\":\"alice\",\"time\":\"t\",\"message\":\"m\"}",
		"{\"id\":\"i\",\"from\":\"al ice\",\"time\":\"t\",\"message\":\"m\",\"sig\":\"s\"}",
		"{\"id\":\"i\",\"from\":\"alice\",\"time\":\"t\",\"message\":\"\xc0\x80\",\"sig\":"
		"\"s\"}",
		"{\"id\":\"i\",\"from\":\"alice\",\"time\":\"t\",\"message\":\"a\\u0000b\",\"sig\":"
		"\"s\"}",
		"{\"id\":\"i\",\"from\":\"alice\",\"time\":\"t\",\"message\":\"m\",\"sig\":\"s\","
		"\"action\":1}",
		"{\"id\":\"01234567890123456789012345678901234567890123456789012345678901234\","
		"\"from\":\"alice\",\"time\":\"t\",\"message\":\"m\",\"sig\":\"s\"}",
		"[\"not an object\"]",
		"7",
	};
	struct backlog_entry en;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *list = json_object_new_array(), *o = json_tokener_parse(bad[i]);
		assert_non_null(o);
		json_object_array_add(list, o);
		if (backlog_entry_parse(list, 0, &en) != -1)
			fail_msg("entry %zu taken: %s", i, bad[i]);
		assert_int_equal(backlog_entry_parse(list, 1, &en), -1);
		json_object_put(list);
	}
	/* A page of more than BACKLOG_PAGE_MAX entries is refused whole. */
	struct json_object *page = backlog_page_new("general"), *list;
	char channel[HY_CHANNEL_MAX + 1];
	int64_t next;
	json_object_object_get_ex(page, "messages", &list);
	for (int i = 0; i <= BACKLOG_PAGE_MAX; i++)
		json_object_array_add(list, json_object_new_int(i));
	assert_int_equal(backlog_page_parse(page, channel, &list, &next), -1);
	json_object_put(page);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_page_bounds),
		cmocka_unit_test(test_entries_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
