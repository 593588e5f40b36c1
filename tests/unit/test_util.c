/* test_util.c — buffers, host:port parsing, constant-time compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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
	/* IPv6 only in brackets: unbracketed, the port could be the address's */
	assert_int_equal(hy_parse_hostport("[fd00::1]:7400", host, sizeof(host), &port, &err), 0);
	assert_string_equal(host, "fd00::1");
	assert_int_equal(port, 7400);
	assert_int_equal(hy_parse_hostport("fd00::1:7400", host, sizeof(host), &port, &err), -1);
	assert_int_equal(hy_parse_hostport("::1:80", host, sizeof(host), &port, &err), -1);
	assert_int_equal(hy_parse_hostport("[::1]", host, sizeof(host), &port, &err), -1);
	assert_int_equal(hy_parse_hostport("[::1]80", host, sizeof(host), &port, &err), -1);
	assert_int_equal(hy_parse_hostport("[]:80", host, sizeof(host), &port, &err), -1);
	assert_int_equal(hy_parse_hostport("[::1:80", host, sizeof(host), &port, &err), -1);
}

static void
test_ip6_rank(void **state)
{
	(void)state;
	assert_int_equal(hy_ip6_rank("2001:db8::1"), 2);
	assert_int_equal(hy_ip6_rank("fd00:2:b::2"), 1);
	assert_int_equal(hy_ip6_rank("fc00::1"), 1);
	assert_int_equal(hy_ip6_rank("fe80::1"), 0);
	assert_int_equal(hy_ip6_rank("::1"), 0);
	assert_int_equal(hy_ip6_rank("::"), 0);
	assert_int_equal(hy_ip6_rank("ff02::1"), 0);
	assert_int_equal(hy_ip6_rank("::ffff:192.0.2.1"), 0);
	assert_int_equal(hy_ip6_rank("192.0.2.1"), 0);
	assert_int_equal(hy_ip6_rank("[2001:db8::1]"), 0);
	assert_int_equal(hy_ip6_rank("2001:db8::1%eth0"), 0);
	assert_int_equal(hy_ip6_rank(""), 0);
}

static void
test_case_insensitive_and_constant_time_compare(void **state)
{
	assert_true(hy_strieq("Content-Length", 14, "content-length"));
	assert_false(hy_strieq("Content-Lengt", 13, "content-length"));
	assert_true(hy_memeq_ct("abc", "abc", 3));
	assert_false(hy_memeq_ct("abc", "abd", 3));
}

/* The one number parser of every command line and command. */
static void
test_numbers_are_whole_and_in_range(void **state)
{
	long long v = -7;

	assert_int_equal(hy_parse_number("9101", 1, 65535, &v), 0);
	assert_int_equal(v, 9101);
	assert_int_equal(hy_parse_number("0", 0, 1, &v), 0);
	assert_int_equal(v, 0);
	v = -7;
	const char *bad[] = { "", " 1", "+1", "-1", "1 ", "1x", "0x10", "65536",
		"99999999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(hy_parse_number(bad[i], 0, 65535, &v), -1);
		assert_int_equal(v, -7); /* untouched */
	}
}

/* The one name check: the tracker's, the peer's and the web app's. */
static void
test_names_and_channels(void **state)
{
	char out[HY_CHANNEL_MAX + 1], longest[HY_CHANNEL_MAX + 2];

	assert_true(hy_name_valid("alice.b-c_9", 11));
	assert_false(hy_name_valid("#alice", 6));
	assert_false(hy_name_valid("al ice", 6));
	assert_false(hy_name_valid("abcdefghijklmnopqrstuvwxyz0123456", HY_NAME_MAX + 1));
	assert_int_equal(hy_channel_canon("#general", 8, out), 0);
	assert_string_equal(out, "general");
	assert_int_equal(hy_channel_canon("##x", 3, out), -1);
	memset(longest, 'c', sizeof(longest));
	assert_int_equal(hy_channel_canon(longest, HY_CHANNEL_MAX, out), 0);
	assert_int_equal(hy_channel_canon(longest, HY_CHANNEL_MAX + 1, out), -1);
}

static void
test_a_cause_is_allocated_and_optional(void **state)
{
	char *cause = NULL;

	hy_cause(&cause, "cannot open %s: %s", "x", "denied");
	assert_string_equal(cause, "cannot open x: denied");
	free(cause);
	hy_cause(NULL, "nobody asked");
}

static void
test_printable_utf8_refuses_controls_and_bad_forms(void **state)
{
	(void)state;
	assert_true(hy_utf8_printable("caf\xc3\xa9 \xe2\x98\x95", 9));
	assert_true(hy_utf8_printable("", 0));
	assert_false(hy_utf8_printable("a\tb", 3)); /* C0 control */
	assert_false(hy_utf8_printable("a\x7f", 2)); /* DEL */
	assert_false(hy_utf8_printable("a\x1b[2J", 5)); /* an escape */
	assert_false(hy_utf8_printable("\xc0\xaf", 2)); /* overlong '/' */
	assert_false(hy_utf8_printable("\xed\xa0\x80", 3)); /* a surrogate */
	assert_false(hy_utf8_printable("\xe2\x98", 2)); /* cut short */
	assert_false(hy_utf8_printable("a\0b", 3)); /* NUL inside */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_appends_and_stays_terminated),
		cmocka_unit_test(test_html_escaping),
		cmocka_unit_test(test_hostport_forms),
		cmocka_unit_test(test_ip6_rank),
		cmocka_unit_test(test_case_insensitive_and_constant_time_compare),
		cmocka_unit_test(test_numbers_are_whole_and_in_range),
		cmocka_unit_test(test_names_and_channels),
		cmocka_unit_test(test_a_cause_is_allocated_and_optional),
		cmocka_unit_test(test_printable_utf8_refuses_controls_and_bad_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
