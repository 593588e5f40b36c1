/* test_webpolicy.c — the web bridge's Host, Origin, Cookie and token
 * checks: the bridge's own addresses pass, names that could be rebound
 * and other ports do not, an Origin must be its request's own Host, the
 * session and the token match exactly and never when empty, malformed
 * values never match, and every value is read
 * from the very end of a page followed by a guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "hychat/webpolicy.h"

/* A copy of s ending exactly at a PROT_NONE page: an over-read faults. */
static char *guard;
static size_t page_size;

static const char *
at_end(const char *s)
{
	size_t n = strlen(s);

	assert_true(n <= page_size);
	memcpy(guard + page_size - n, s, n);
	return guard + page_size - n;
}

static int
setup(void **state)
{
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	guard =
	    mmap(NULL, page_size * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(guard != MAP_FAILED);
	assert_int_equal(mprotect(guard + page_size, page_size, PROT_NONE), 0);
	return 0;
}

static int
teardown(void **state)
{
	munmap(guard, page_size * 2);
	return 0;
}

static int
host_ok(const struct webpolicy *p, const char *h)
{
	return webpolicy_host_ok(p, at_end(h), strlen(h));
}

/* Each of the two values read from the end of the page in turn. */
static int
origin_ok(const struct webpolicy *p, const char *o, const char *h)
{
	int a = webpolicy_origin_ok(p, at_end(o), strlen(o), h, strlen(h));
	int b = webpolicy_origin_ok(p, o, strlen(o), at_end(h), strlen(h));

	assert_int_equal(a, b);
	return a;
}

static void
test_loopback_bridge_accepts_its_own_names_only(void **state)
{
	struct webpolicy p;
	static const char *good[] = { "127.0.0.1:19101", "localhost:19101", "[::1]:19101",
		"127.0.0.2:19101" };
	static const char *bad[] = { "127.0.0.1:19102", "127.0.0.1", "evil.example:19101",
		"localhost.evil.example:19101", "192.0.2.1:19101", "[::1]", "[::1:19101",
		"127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:19101x", ":19101", "",
		"127.0.0.1:+9101", "[::ffff:192.0.2.1]:19101" };

	assert_int_equal(webpolicy_init(&p, "127.0.0.1", 19101), 0);
	assert_false(p.wildcard);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(host_ok(&p, good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (host_ok(&p, bad[i]))
			fail_msg("host %s accepted", bad[i]);
}

static void
test_origin_is_http_and_the_requests_own_host(void **state)
{
	struct webpolicy p;

	assert_int_equal(webpolicy_init(&p, "127.0.0.1", 19101), 0);
	assert_true(origin_ok(&p, "http://127.0.0.1:19101", "127.0.0.1:19101"));
	assert_true(origin_ok(&p, "http://localhost:19101", "localhost:19101"));
	assert_true(origin_ok(&p, "http://LocalHost:19101", "localhost:19101"));
	assert_true(origin_ok(&p, "http://[::1]:19101", "[::1]:19101"));
	/* Both accepted hosts, but not the same one. */
	assert_false(origin_ok(&p, "http://localhost:19101", "127.0.0.1:19101"));
	assert_false(origin_ok(&p, "http://127.0.0.1:19101", "localhost:19101"));
	assert_false(origin_ok(&p, "http://127.0.0.2:19101", "127.0.0.1:19101"));
	assert_false(origin_ok(&p, "https://127.0.0.1:19101", "127.0.0.1:19101"));
	assert_false(origin_ok(&p, "http://evil.example:19101", "evil.example:19101"));
	assert_false(origin_ok(&p, "http://127.0.0.1:19102", "127.0.0.1:19101"));
	assert_false(origin_ok(&p, "http://localhost:8080", "localhost:8080"));
	assert_false(origin_ok(&p, "null", "127.0.0.1:19101"));
	assert_false(origin_ok(&p, "http://", "127.0.0.1:19101"));
	assert_false(origin_ok(&p, "http:/", "127.0.0.1:19101"));
	assert_false(origin_ok(&p, "", "127.0.0.1:19101"));
	assert_false(origin_ok(&p, "http://127.0.0.1:19101", ""));
	assert_false(origin_ok(&p, "http://127.0.0.1:19101/", "127.0.0.1:19101"));

	/* A wildcard listener accepts every IP literal as a Host, and the
	 * Origin must still be that one. */
	assert_int_equal(webpolicy_init(&p, "0.0.0.0", 8443), 0);
	assert_true(origin_ok(&p, "http://192.0.2.8:8443", "192.0.2.8:8443"));
	assert_false(origin_ok(&p, "http://192.0.2.9:8443", "192.0.2.8:8443"));
	assert_false(origin_ok(&p, "http://127.0.0.1:8443", "192.0.2.8:8443"));
	assert_false(origin_ok(&p, "http://localhost:8443", "127.0.0.1:8443"));
	assert_true(origin_ok(&p, "http://[2001:db8::1]:8443", "[2001:db8:0::1]:8443"));
}

static void
test_specific_and_wildcard_addresses(void **state)
{
	struct webpolicy p;

	assert_int_equal(webpolicy_init(&p, "192.0.2.7", 8443), 0);
	assert_true(host_ok(&p, "192.0.2.7:8443"));
	assert_false(host_ok(&p, "192.0.2.8:8443"));
	assert_false(host_ok(&p, "127.0.0.1:8443")); /* not where it listens */

	assert_int_equal(webpolicy_init(&p, "0.0.0.0", 8443), 0);
	assert_true(p.wildcard);
	assert_true(host_ok(&p, "192.0.2.8:8443"));
	assert_true(host_ok(&p, "127.0.0.1:8443"));
	assert_true(host_ok(&p, "[2001:db8::1]:8443"));
	assert_false(host_ok(&p, "chat.example:8443")); /* a name: never */

	assert_int_equal(webpolicy_init(&p, "::", 8443), 0);
	assert_true(p.wildcard);
	assert_int_equal(webpolicy_init(&p, "::1", 8443), 0);
	assert_true(host_ok(&p, "[::1]:8443"));
	assert_true(host_ok(&p, "localhost:8443"));
	assert_false(host_ok(&p, "::1:8443"));
}

static void
test_only_ip_literals_are_listened_on(void **state)
{
	struct webpolicy p;

	assert_int_equal(webpolicy_init(&p, "localhost", 1), -1);
	assert_int_equal(webpolicy_init(&p, "example.org", 1), -1);
	assert_int_equal(webpolicy_init(&p, "", 1), -1);
	assert_int_equal(webpolicy_init(&p, "127.0.0.1.", 1), -1);
}

static void
test_loopback_addresses(void **state)
{
	assert_true(webpolicy_is_loopback("127.0.0.1"));
	assert_true(webpolicy_is_loopback("127.255.0.9"));
	assert_true(webpolicy_is_loopback("::1"));
	assert_true(webpolicy_is_loopback("localhost"));
	assert_false(webpolicy_is_loopback("0.0.0.0"));
	assert_false(webpolicy_is_loopback("::"));
	assert_false(webpolicy_is_loopback("192.0.2.1"));
	assert_false(webpolicy_is_loopback("128.0.0.1"));
	assert_false(webpolicy_is_loopback("localhost.example"));
}

#define SESSION "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int
session_ok(const char *h, const char *name, const char *session)
{
	return webpolicy_session_ok(at_end(h), strlen(h), name, session);
}

static void
test_session_cookie_matches_exactly(void **state)
{
	static const char *name = "hychat_session_19101";

	assert_true(session_ok("hychat_session_19101=" SESSION, name, SESSION));
	assert_true(session_ok("a=1; hychat_session_19101=" SESSION " ; b=2", name, SESSION));
	assert_true(session_ok("hychat_session_19101=\"" SESSION "\"", name, SESSION));
	assert_false(session_ok("hychat_session_19101=" SESSION "0", name, SESSION));
	assert_false(session_ok("hychat_session_19101=" SESSION, name, SESSION "0"));
	assert_false(session_ok("hychat_session_19101=1" SESSION, name, SESSION));
	assert_false(session_ok("hychat_session_19101=", name, SESSION));
	assert_false(session_ok("hychat_session_19101=", name, "")); /* never empty */
	assert_false(session_ok("hychat_session_19102=" SESSION, name, SESSION));
	assert_false(session_ok("xhychat_session_19101=" SESSION, name, SESSION));
	assert_false(session_ok("hychat_session_191010=" SESSION, name, SESSION));
	assert_false(session_ok("", name, SESSION));
	assert_false(session_ok("hychat_session_19101", name, SESSION));
}

static int
token_ok(const char *q, const char *token)
{
	return webpolicy_token_ok(at_end(q), strlen(q), token);
}

static void
test_token_matches_exactly_and_never_when_spent(void **state)
{
	assert_true(token_ok("token=" SESSION, SESSION));
	assert_true(token_ok("a=b&token=" SESSION "&c", SESSION));
	assert_true(token_ok("tok%65n=" SESSION, SESSION));
	assert_false(token_ok("token=" SESSION, "")); /* spent */
	assert_false(token_ok("token=", ""));
	assert_false(token_ok("token", ""));
	assert_false(token_ok("", ""));
	assert_false(token_ok("token=" SESSION "0", SESSION));
	assert_false(token_ok("token=0" SESSION, SESSION));
	assert_false(token_ok("token=" SESSION, SESSION "0"));
	assert_false(token_ok("xtoken=" SESSION, SESSION));
	assert_false(token_ok("token=%zz", SESSION));
	assert_false(token_ok("token=" SESSION SESSION SESSION, SESSION));
}

static void
test_an_uploaded_name_becomes_a_plain_file_name(void **state)
{
	char out[WEBPOLICY_UPLOAD_NAME_MAX + 1], big[1000];
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "report.pdf", "report.pdf" }, { "../../.bashrc", "_.._.bashrc" },
		{ "/etc/passwd", "_etc_passwd" }, { "..", "file" }, { "", "file" },
		{ " .hidden", "hidden" }, { "notes.txt  ", "notes.txt" }, { " . . ", "file" },
		{ "a\\b", "a_b" }, { "bell\a\x1b[2Jx\x7f", "bell__[2Jx_" },
		{ "caf\xc3\xa9.txt", "caf\xc3\xa9.txt" },
		{ "bad\xc3(\xff\xc0\xaf", "bad_(___" }, /* cut, invalid, overlong */
		{ "\xed\xa0\x80", "___" }, /* a surrogate */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		webpolicy_upload_name(cases[i].in, strlen(cases[i].in), out);
		assert_string_equal(out, cases[i].want);
	}
	/* A NUL inside is a control character, not the end. */
	webpolicy_upload_name("a\0b", 3, out);
	assert_string_equal(out, "a_b");
	/* Long: cut to the maximum, never inside a character. */
	for (size_t i = 0; i + 2 <= sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	webpolicy_upload_name(big, sizeof(big), out);
	assert_int_equal(strlen(out), WEBPOLICY_UPLOAD_NAME_MAX);
	memset(big, 'x', sizeof(big));
	big[0] = 'y';
	webpolicy_upload_name(big, sizeof(big), out);
	assert_int_equal(strlen(out), WEBPOLICY_UPLOAD_NAME_MAX);
}

static void
test_an_upload_size_is_digits_up_to_the_limit(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(webpolicy_upload_size("0", 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(webpolicy_upload_size("10", 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(webpolicy_upload_size("11", 10, &v), -1);
	assert_int_equal(webpolicy_upload_size("", 10, &v), -1);
	assert_int_equal(webpolicy_upload_size("-1", 10, &v), -1);
	assert_int_equal(webpolicy_upload_size("1e3", 10000, &v), -1);
	assert_int_equal(webpolicy_upload_size(" 5", 10, &v), -1);
	assert_int_equal(webpolicy_upload_size("18446744073709551615", UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(webpolicy_upload_size("18446744073709551616", UINT64_MAX, &v), -1);
	assert_int_equal(webpolicy_upload_size("99999999999999999999999", UINT64_MAX, &v), -1);
	assert_int_equal(webpolicy_upload_size("5", 0, &v), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback_bridge_accepts_its_own_names_only),
		cmocka_unit_test(test_origin_is_http_and_the_requests_own_host),
		cmocka_unit_test(test_specific_and_wildcard_addresses),
		cmocka_unit_test(test_only_ip_literals_are_listened_on),
		cmocka_unit_test(test_loopback_addresses),
		cmocka_unit_test(test_session_cookie_matches_exactly),
		cmocka_unit_test(test_token_matches_exactly_and_never_when_spent),
		cmocka_unit_test(test_an_uploaded_name_becomes_a_plain_file_name),
		cmocka_unit_test(test_an_upload_size_is_digits_up_to_the_limit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
