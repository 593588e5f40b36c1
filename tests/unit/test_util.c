/* test_util.c — buffers, host:port parsing, constant-time compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hychat/util.h"

static void
test_buf_appends_and_stays_terminated(void **state)
{
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 1000; i++)
		buf_append_str(&b, "ab");
	assert_int_equal(b.len, 2000);
	assert_int_equal(b.data[b.len], '\0');
	buf_consume(&b, 1999);
	assert_string_equal(b.data, "b");
	buf_printf(&b, "%d-%s", 42, "x");
	assert_string_equal(b.data, "b42-x");
	b.len = 0;
	buf_append_u64(&b, 0);
	buf_append_u64(&b, UINT64_MAX);
	assert_string_equal(b.data, "018446744073709551615");
	buf_fini(&b);
}

static void
test_html_escaping(void **state)
{
	struct buf b;
	buf_init(&b);
	buf_append_html(&b, "<img src=x onerror='a(1)'>&\"", 28);
	assert_string_equal(b.data, "&lt;img src=x onerror=&#39;a(1)&#39;&gt;&amp;&quot;");
	buf_fini(&b);
}

static void
test_hostport_forms(void **state)
{
	char host[64];
	int port;
	const char *err;
	assert_int_equal(hy_parse_hostport("127.0.0.1:8080", host, sizeof(host), &port, &err), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(hy_parse_hostport("[::1]:9", host, sizeof(host), &port, &err), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(hy_parse_hostport("nohost", host, sizeof(host), &port, &err), -1);
	assert_int_equal(hy_parse_hostport(":80", host, sizeof(host), &port, &err), -1);
	assert_int_equal(hy_parse_hostport("a:99999", host, sizeof(host), &port, &err), -1);
	assert_int_equal(hy_parse_hostport("a:8x", host, sizeof(host), &port, &err), -1);
	assert_int_equal(hy_parse_hostport("a:", host, sizeof(host), &port, &err), -1);
}

static void
test_case_insensitive_and_constant_time_compare(void **state)
{
	assert_true(hy_strieq("Content-Length", 14, "content-length"));
	assert_false(hy_strieq("Content-Lengt", 13, "content-length"));
	assert_true(hy_memeq_ct("abc", "abc", 3));
	assert_false(hy_memeq_ct("abc", "abd", 3));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_appends_and_stays_terminated),
		cmocka_unit_test(test_html_escaping),
		cmocka_unit_test(test_hostport_forms),
		cmocka_unit_test(test_case_insensitive_and_constant_time_compare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
