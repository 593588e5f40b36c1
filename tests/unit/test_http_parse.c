/* test_http_parse.c — the HTTP/1.1 parser. Every input is placed at the
 * very end of a page followed by a PROT_NONE guard page, so that reading
 * one byte too far crashes (picohttpparser's trick). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "hychat/http_parse.h"

#define GUARD_MAX 65536

static char *guard_base;
static size_t guard_size;

/* Copies s to the end of the readable area, right before the guard page. */
static char *
guarded(const char *s, size_t len)
{
	if (guard_base == NULL) {
		long page = sysconf(_SC_PAGESIZE);
		guard_size = GUARD_MAX;
		guard_base = mmap(NULL, guard_size + (size_t)page, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(guard_base != MAP_FAILED);
		assert_int_equal(mprotect(guard_base + guard_size, (size_t)page, PROT_NONE), 0);
	}
	assert_true(len <= guard_size);
	char *p = guard_base + guard_size - len;
	memcpy(p, s, len);
	return p;
}

static int
parse_req(const char *s, struct http_request_head *h)
{
	size_t len = strlen(s);
	return http_parse_request(guarded(s, len), len, 0, h);
}

static void
test_simple_get_is_parsed_into_views(void **state)
{
	struct http_request_head h;
	const char *s = "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example\r\nX-Empty:\r\n"
	                "Accept:  text/html \t\r\n\r\n";
	int r = parse_req(s, &h);
	assert_int_equal(r, (int)strlen(s));
	assert_int_equal(h.method_len, 3);
	assert_memory_equal(h.method, "GET", 3);
	assert_int_equal(h.path_len, 4);
	assert_memory_equal(h.path, "/a/b", 4);
	assert_int_equal(h.query_len, 7);
	assert_memory_equal(h.query, "x=1&y=2", 7);
	assert_int_equal(h.minor_version, 1);
	assert_int_equal(h.num_headers, 3);
	assert_int_equal(h.headers[1].value_len, 0);
	assert_int_equal(h.headers[2].value_len, 9);
	assert_memory_equal(h.headers[2].value, "text/html", 9);
	const struct http_header *f = http_header_find(h.headers, h.num_headers, "HOST");
	assert_non_null(f);
	assert_memory_equal(f->value, "example", 7);
	assert_null(http_header_find(h.headers, h.num_headers, "Hos"));
}

static void
test_every_prefix_of_a_valid_request_is_incomplete(void **state)
{
	struct http_request_head h;
	const char *s = "POST /p HTTP/1.0\r\nA: b\r\nContent-Length: 3\r\n\r\n";
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i++) {
		char *p = guarded(s, i);
		assert_int_equal(http_parse_request(p, i, 0, &h), HTTP_PARSE_INCOMPLETE);
	}
	assert_int_equal(http_parse_request(guarded(s, len), len, len - 1, &h), (int)len);
	assert_int_equal(h.minor_version, 0);
}

static void
test_pipelined_requests_parse_one_at_a_time(void **state)
{
	struct http_request_head h;
	const char *s = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
	int r = parse_req(s, &h);
	assert_int_equal(r, (int)strlen(s) / 2);
	assert_memory_equal(h.path, "/1", 2);
	r = http_parse_request(s + r, strlen(s) / 2, 0, &h);
	assert_memory_equal(h.path, "/2", 2);
}

static void
test_bare_lf_and_leading_empty_lines_accepted(void **state)
{
	struct http_request_head h;
	assert_true(parse_req("\r\n\nGET / HTTP/1.1\nHost: a\n\n", &h) > 0);
	assert_int_equal(h.num_headers, 1);
}

static void
test_malformed_heads_are_bad(void **state)
{
	static const char *const bad[] = {
		"GET  / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1 \r\n\r\n",
		"G(T / HTTP/1.1\r\n\r\n",
		"GET /a\x01 HTTP/1.1\r\n\r\n",
		"GET /a\x7f HTTP/1.1\r\n\r\n",
		"GET /\xff HTTP/1.1\r\n\r\n",
		"GET / FTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nNo Colon\r\n\r\n",
		"GET / HTTP/1.1\r\nName : v\r\n\r\n",
		"GET / HTTP/1.1\r\n: v\r\n\r\n",
		"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
		"GET / HTTP/1.1\r\nA: b\0"
		"c\r\n\r\n",
		"GET\r\n\r\n",
		" GET / HTTP/1.1\r\n\r\n",
	};
	struct http_request_head h;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]);
		if (i == 12)
			len = 26; /* keeps the NUL */
		int r = http_parse_request(guarded(bad[i], len), len, 0, &h);
		if (r != HTTP_PARSE_BAD)
			fail_msg("case %zu: got %d", i, r);
	}
}

static void
test_other_versions_are_505(void **state)
{
	struct http_request_head h;
	assert_int_equal(parse_req("GET / HTTP/2.0\r\n\r\n", &h), HTTP_PARSE_BAD_VERSION);
	assert_int_equal(parse_req("GET / HTTP/1.2\r\n\r\n", &h), HTTP_PARSE_BAD_VERSION);
	assert_int_equal(parse_req("GET / HTTP/1.x\r\n\r\n", &h), HTTP_PARSE_BAD);
}

static void
test_too_many_headers(void **state)
{
	char s[8192];
	struct http_request_head h;
	size_t n = (size_t)snprintf(s, sizeof(s), "GET / HTTP/1.1\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "H%d: v\r\n", i);
	snprintf(s + n, sizeof(s) - n, "\r\n");
	assert_true(parse_req(s, &h) > 0);
	snprintf(s + n, sizeof(s) - n, "One: more\r\n\r\n");
	assert_int_equal(parse_req(s, &h), HTTP_PARSE_TOO_MANY_HEADERS);
}

static void
test_fragment_and_query_split(void **state)
{
	struct http_request_head h;
	assert_true(parse_req("GET /p#frag?no HTTP/1.1\r\n\r\n", &h) > 0);
	assert_int_equal(h.path_len, 2);
	assert_null(h.query);
	assert_true(parse_req("GET /p?q#f HTTP/1.1\r\n\r\n", &h) > 0);
	assert_int_equal(h.query_len, 1);
}

static void
test_response_heads(void **state)
{
	struct http_response_head r;
	const char *s = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nrest";
	size_t len = strlen(s);
	assert_int_equal(http_parse_response(guarded(s, len), len, 0, &r), (int)len - 4);
	assert_int_equal(r.status, 404);
	assert_int_equal(r.reason_len, 9);
	assert_int_equal(r.num_headers, 1);
	s = "HTTP/1.0 200\r\n\r\n";
	len = strlen(s);
	assert_int_equal(http_parse_response(guarded(s, len), len, 0, &r), (int)len);
	assert_int_equal(r.reason_len, 0);
	static const char *const bad[] = { "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n", "ICY 200 OK\r\n\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = strlen(bad[i]);
		assert_int_equal(
		    http_parse_response(guarded(bad[i], len), len, 0, &r), HTTP_PARSE_BAD);
	}
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(
		    http_parse_response(guarded("HTTP/1.1 2", i), i, 0, &r), HTTP_PARSE_INCOMPLETE);
}

static void
test_content_length_values(void **state)
{
	uint64_t v;
	assert_int_equal(http_parse_content_length("0", 1, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(http_parse_content_length("9223372036854775807", 19, &v), 0);
	assert_int_equal(http_parse_content_length("9223372036854775808", 19, &v), -1);
	assert_int_equal(http_parse_content_length("99999999999999999999", 20, &v), -1);
	assert_int_equal(http_parse_content_length("", 0, &v), -1);
	assert_int_equal(http_parse_content_length("-1", 2, &v), -1);
	assert_int_equal(http_parse_content_length("+1", 2, &v), -1);
	assert_int_equal(http_parse_content_length("1 2", 3, &v), -1);
	assert_int_equal(http_parse_content_length("0x10", 4, &v), -1);
}

static void
test_connection_tokens(void **state)
{
	assert_true(http_header_has_token("keep-alive, Upgrade", 19, "upgrade"));
	assert_true(http_header_has_token(" close ", 7, "close"));
	assert_false(http_header_has_token("closed", 6, "close"));
	assert_false(http_header_has_token("", 0, "close"));
}

/* Decodes body in pieces of `step` bytes, as reads would deliver them. */
static ssize_t
decode_split(const char *body, size_t len, size_t step, char *out, size_t *outlen)
{
	struct http_chunked d;
	char tmp[4096];
	size_t off = 0;
	ssize_t r = HTTP_PARSE_INCOMPLETE;

	http_chunked_init(&d);
	*outlen = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		memcpy(tmp, body + off, n);
		size_t got = n;
		r = http_chunked_decode(&d, tmp, &got);
		if (r == HTTP_PARSE_BAD)
			return r;
		memcpy(out + *outlen, tmp, got);
		*outlen += got;
		off += n;
		if (r >= 0)
			return r + (ssize_t)(len - off);
	}
	return r;
}

static void
test_chunked_body_decodes_at_every_split(void **state)
{
	const char *body = "5\r\nhello\r\n6;name=val\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
	size_t len = strlen(body);
	char out[256];
	size_t outlen;
	for (size_t step = 1; step <= len; step++) {
		ssize_t r = decode_split(body, len, step, out, &outlen);
		assert_int_equal(r, 4);
		assert_int_equal(outlen, 11);
		assert_memory_equal(out, "hello world", 11);
	}
}

static void
test_chunked_body_in_place_reports_leftover(void **state)
{
	char body[] = "3\nabc\n0\n\nGET";
	size_t len = strlen(body);
	struct http_chunked d;
	http_chunked_init(&d);
	char *p = guarded(body, len);
	ssize_t r = http_chunked_decode(&d, p, &len);
	assert_int_equal(r, 3);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "abc", 3);
}

static void
test_chunked_errors(void **state)
{
	static const char *const bad[] = {
		"x\r\n",
		"\r\n",
		"5\r\nhelloX\r\n",
		"5\r\nhello\rX",
		"12345678901234567\r\n",
		"0\r\nTrailer\r\nX",
		"3\r\nabc\r\n0\r\n\rX",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_chunked d;
		http_chunked_init(&d);
		size_t len = strlen(bad[i]);
		char *p = guarded(bad[i], len);
		if (http_chunked_decode(&d, p, &len) != HTTP_PARSE_BAD)
			fail_msg("case %zu not rejected", i);
	}
	/* an endless extension is cut off */
	char ext[6000];
	memset(ext, 'a', sizeof(ext));
	ext[0] = '1';
	ext[1] = ';';
	struct http_chunked d;
	http_chunked_init(&d);
	size_t len = sizeof(ext);
	assert_int_equal(http_chunked_decode(&d, guarded(ext, len), &len), HTTP_PARSE_BAD);
}

static void
test_percent_decoding(void **state)
{
	char out[64];
	assert_int_equal(http_percent_decode(out, "/a%20b%2F", 9, 0), 5);
	assert_memory_equal(out, "/a b/", 5);
	assert_int_equal(http_percent_decode(out, "a+b", 3, 1), 3);
	assert_memory_equal(out, "a b", 3);
	assert_int_equal(http_percent_decode(out, "a+b", 3, 0), 3);
	assert_memory_equal(out, "a+b", 3);
	assert_int_equal(http_percent_decode(out, guarded("%", 1), 1, 0), -1);
	assert_int_equal(http_percent_decode(out, guarded("%4", 2), 2, 0), -1);
	assert_int_equal(http_percent_decode(out, "%zz", 3, 0), -1);
	assert_int_equal(http_percent_decode(out, "%00", 3, 0), -1);
}

static void
test_form_and_query_values(void **state)
{
	char out[32];
	const char *f = "username=admin&password=p%40ss+word&empty=&flag";
	size_t len = strlen(f);
	const char *g = guarded(f, len);
	assert_int_equal(http_form_get(g, len, "username", out, sizeof(out)), 5);
	assert_string_equal(out, "admin");
	assert_int_equal(http_form_get(g, len, "password", out, sizeof(out)), 9);
	assert_string_equal(out, "p@ss word");
	assert_int_equal(http_form_get(g, len, "empty", out, sizeof(out)), 0);
	assert_int_equal(http_form_get(g, len, "flag", out, sizeof(out)), 0);
	assert_int_equal(http_form_get(g, len, "user", out, sizeof(out)), -1);
	assert_int_equal(http_form_get(g, len, "password", out, 4), -1);
	assert_int_equal(http_form_get("a=%zz", 5, "a", out, sizeof(out)), -1);
}

static void
test_cookie_lookup(void **state)
{
	const char *v;
	size_t vl;
	const char *c = "a=1; session=\"abc\";  other = x ;last=";
	size_t len = strlen(c);
	const char *g = guarded(c, len);
	assert_int_equal(http_cookie_get(g, len, "session", &v, &vl), 0);
	assert_int_equal(vl, 3);
	assert_memory_equal(v, "abc", 3);
	assert_int_equal(http_cookie_get(g, len, "other", &v, &vl), 0);
	assert_memory_equal(v, "x", 1);
	assert_int_equal(http_cookie_get(g, len, "last", &v, &vl), 0);
	assert_int_equal(vl, 0);
	assert_int_equal(http_cookie_get(g, len, "Session", &v, &vl), -1);
	assert_int_equal(http_cookie_get(g, len, "sess", &v, &vl), -1);
}

static void
test_random_bytes_never_crash(void **state)
{
	struct http_request_head h;
	struct http_response_head r;
	uint32_t x = 12345;
	char buf[512];
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)(x % sizeof(buf));
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			/* bias toward the bytes the grammar cares about */
			static const char alphabet[] = "GET / HTTP/1.1\r\n:;=%0aA \t\x00\xff";
			buf[i] = (x >> 16) & 1 ? alphabet[(x >> 8) % (sizeof(alphabet) - 1)]
			                       : (char)(x >> 8);
		}
		x = x * 1103515245u + 12345u;
		char *p = guarded(buf, len);
		(void)http_parse_request(p, len, 0, &h);
		(void)http_parse_response(p, len, 0, &r);
		struct http_chunked d;
		http_chunked_init(&d);
		size_t l = len;
		(void)http_chunked_decode(&d, p, &l);
		char out[512];
		(void)http_percent_decode(out, p, len, 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_get_is_parsed_into_views),
		cmocka_unit_test(test_every_prefix_of_a_valid_request_is_incomplete),
		cmocka_unit_test(test_pipelined_requests_parse_one_at_a_time),
		cmocka_unit_test(test_bare_lf_and_leading_empty_lines_accepted),
		cmocka_unit_test(test_malformed_heads_are_bad),
		cmocka_unit_test(test_other_versions_are_505),
		cmocka_unit_test(test_too_many_headers),
		cmocka_unit_test(test_fragment_and_query_split),
		cmocka_unit_test(test_response_heads),
		cmocka_unit_test(test_content_length_values),
		cmocka_unit_test(test_connection_tokens),
		cmocka_unit_test(test_chunked_body_decodes_at_every_split),
		cmocka_unit_test(test_chunked_body_in_place_reports_leftover),
		cmocka_unit_test(test_chunked_errors),
		cmocka_unit_test(test_percent_decoding),
		cmocka_unit_test(test_form_and_query_values),
		cmocka_unit_test(test_cookie_lookup),
		cmocka_unit_test(test_random_bytes_never_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
