/* test_proxy_head.c — the heads the proxy passes on: hop-by-hop headers
 * dropped both ways, X-Forwarded-For appended, X-Forwarded-Proto and
 * Forwarded, proxy_set_header, WebSocket upgrades, the body's framing,
 * and heads it cannot use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hychat/proxy_head.h"

/* A parsed request as the server hands it to the proxy; s must outlive
 * it (the head holds views into s). */
static void
request(struct http_request *req, const char *s, int chunked, uint64_t content_length)
{
	memset(req, 0, sizeof(*req));
	assert_true(http_parse_request(s, strlen(s), 0, &req->head) > 0);
	req->chunked = chunked;
	req->content_length = content_length;
}

/* The head proxy_head_request() makes, NUL-terminated; free() it. */
static char *
rewrite(const char *s, const struct proxy_vhost *v, const char *remote, int tls)
{
	static const struct proxy_vhost none;
	struct http_request req;
	struct buf o;

	request(&req, s, 0, 0);
	buf_init(&o);
	proxy_head_request(
	    &o, &req, v != NULL ? v : &none, remote, tls, proxy_head_is_upgrade(&req));
	buf_append_char(&o, '\0');
	return o.data;
}

static void
test_request_head_drops_hop_by_hop_headers(void **state)
{
	char *h = rewrite("GET /a?b HTTP/1.1\r\n"
	                  "Host: app\r\n"
	                  "Connection: keep-alive, X-Secret\r\n"
	                  "Keep-Alive: timeout=5\r\n"
	                  "Proxy-Connection: keep-alive\r\n"
	                  "TE: trailers\r\n"
	                  "Trailer: X-T\r\n"
	                  "Upgrade: h2c\r\n"
	                  "Expect: 100-continue\r\n"
	                  "Proxy-Authorization: Basic eA==\r\n"
	                  "X-Secret: named by Connection\r\n"
	                  "Accept: */*\r\n"
	                  "\r\n",
	    NULL, "127.0.0.1", 0);
	assert_string_equal(h,
	    "GET /a?b HTTP/1.1\r\n"
	    "Host: app\r\n"
	    "Accept: */*\r\n"
	    "X-Forwarded-For: 127.0.0.1\r\n"
	    "X-Forwarded-Proto: http\r\n"
	    "Forwarded: for=127.0.0.1;proto=http\r\n"
	    "\r\n");
	free(h);
}

static void
test_request_line_becomes_http_1_1(void **state)
{
	char *h = rewrite("HEAD / HTTP/1.0\r\nHost: app\r\n\r\n", NULL, "10.0.0.1", 0);
	assert_memory_equal(h, "HEAD / HTTP/1.1\r\nHost: app\r\n", 28);
	free(h);
}

static void
test_x_forwarded_for_appends_the_client(void **state)
{
	char *h = rewrite("GET / HTTP/1.1\r\nHost: app\r\n"
	                  "X-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n\r\n",
	    NULL, "10.0.0.9", 0);
	assert_non_null(strstr(h, "\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8, 10.0.0.9\r\n"));
	/* one X-Forwarded-For line only */
	assert_null(strstr(strstr(h, "X-Forwarded-For") + 1, "X-Forwarded-For"));
	free(h);
}

static void
test_forwarded_proto_follows_the_client_connection(void **state)
{
	char *h = rewrite("GET / HTTP/1.1\r\nHost: app\r\n"
	                  "X-Forwarded-Proto: https\r\n\r\n",
	    NULL, "10.0.0.1", 0);
	assert_non_null(
	    strstr(h, "X-Forwarded-Proto: http\r\nForwarded: for=10.0.0.1;proto=http\r\n"));
	free(h);
	h = rewrite("GET / HTTP/1.1\r\nHost: app\r\n\r\n", NULL, "10.0.0.1", 1);
	assert_non_null(
	    strstr(h, "X-Forwarded-Proto: https\r\nForwarded: for=10.0.0.1;proto=https\r\n"));
	free(h);
}

static void
test_forwarded_quotes_an_ipv6_client(void **state)
{
	char *h = rewrite("GET / HTTP/1.1\r\nHost: app\r\n\r\n", NULL, "::1", 1);
	assert_non_null(strstr(h, "X-Forwarded-For: ::1\r\n"));
	assert_non_null(strstr(h, "Forwarded: for=\"[::1]\";proto=https\r\n"));
	free(h);
}

static void
test_host_kept_or_set_by_the_host_block(void **state)
{
	struct proxy_vhost v;
	memset(&v, 0, sizeof(v));
	char *h = rewrite("GET / HTTP/1.1\r\nHost: app.local:8080\r\n\r\n", &v, "10.0.0.1", 0);
	assert_non_null(strstr(h, "\r\nHost: app.local:8080\r\n"));
	free(h);

	v.nset = 2;
	strcpy(v.set[0].name, "Host");
	strcpy(v.set[0].value, "backend.internal");
	strcpy(v.set[1].name, "X-Real-IP");
	strcpy(v.set[1].value, "$remote_addr via $host!");
	h = rewrite(
	    "GET / HTTP/1.1\r\nhost: app.local\r\nx-real-ip: forged\r\n\r\n", &v, "10.0.0.1", 0);
	assert_string_equal(h,
	    "GET / HTTP/1.1\r\n"
	    "Host: backend.internal\r\n"
	    "X-Real-IP: 10.0.0.1 via app.local!\r\n"
	    "X-Forwarded-For: 10.0.0.1\r\n"
	    "X-Forwarded-Proto: http\r\n"
	    "Forwarded: for=10.0.0.1;proto=http\r\n"
	    "\r\n");
	free(h);
}

static void
test_host_variable_without_a_host_header_is_empty(void **state)
{
	struct proxy_vhost v;
	memset(&v, 0, sizeof(v));
	v.nset = 1;
	strcpy(v.set[0].name, "X-H");
	strcpy(v.set[0].value, "[$host]");
	char *h = rewrite("GET / HTTP/1.0\r\n\r\n", &v, "10.0.0.1", 0);
	assert_non_null(strstr(h, "\r\nX-H: []\r\n"));
	free(h);
}

static void
test_websocket_upgrade_is_kept(void **state)
{
	const char *ws = "GET /ws HTTP/1.1\r\nHost: app\r\n"
	                 "Connection: keep-alive, Upgrade\r\n"
	                 "Upgrade: websocket\r\n"
	                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n";
	struct http_request req;
	request(&req, ws, 0, 0);
	assert_true(proxy_head_is_upgrade(&req));
	char *h = rewrite(ws, NULL, "10.0.0.1", 0);
	assert_non_null(strstr(h, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
	assert_non_null(strstr(h, "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
	assert_null(strstr(h, "keep-alive"));
	free(h);
}

static void
test_upgrade_needs_both_headers(void **state)
{
	const char *no_upgrade = "GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n";
	const char *no_conn = "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
	struct http_request req;

	request(&req, no_upgrade, 0, 0);
	assert_false(proxy_head_is_upgrade(&req));
	request(&req, no_conn, 0, 0);
	assert_false(proxy_head_is_upgrade(&req));
	char *h = rewrite(no_conn, NULL, "10.0.0.1", 0);
	assert_null(strstr(h, "pgrade"));
	free(h);
}

/* The head for s as a request with that framing; free() it. */
static char *
framed(const char *s, int chunked, uint64_t content_length)
{
	static const struct proxy_vhost v;
	struct http_request req;
	struct buf o;

	request(&req, s, chunked, content_length);
	buf_init(&o);
	proxy_head_request(&o, &req, &v, "10.0.0.1", 0, 0);
	buf_append_char(&o, '\0');
	return o.data;
}

static void
test_request_framing_is_stated_anew(void **state)
{
	const char *s = "POST / HTTP/1.1\r\nHost: app\r\n"
	                "Content-Length: 999\r\n"
	                "Transfer-Encoding: gzip, chunked\r\n\r\n";

	char *h = framed(s, 1, UINT64_MAX);
	assert_non_null(strstr(h, "\r\nTransfer-Encoding: chunked\r\n\r\n"));
	assert_null(strstr(h, "Content-Length"));
	assert_null(strstr(h, "gzip"));
	free(h);

	h = framed(s, 0, 5);
	assert_non_null(strstr(h, "\r\nContent-Length: 5\r\n\r\n"));
	assert_null(strstr(h, "999"));
	assert_null(strstr(h, "Transfer-Encoding"));
	free(h);

	h = framed(s, 0, 0);
	assert_null(strstr(h, "Content-Length"));
	assert_null(strstr(h, "Transfer-Encoding"));
	free(h);
}

static void
test_long_header_names_against_connection_tokens(void **state)
{
	/* a name too long to be a Connection token is passed on, not cut */
	char s[512];
	char name[101];
	memset(name, 'x', 100);
	name[100] = '\0';
	snprintf(
	    s, sizeof(s), "GET / HTTP/1.1\r\nConnection: %s\r\n%s: 1\r\nx: 2\r\n\r\n", name, name);
	char *h = rewrite(s, NULL, "10.0.0.1", 0);
	char want[128];
	snprintf(want, sizeof(want), "\r\n%s: 1\r\n", name);
	assert_non_null(strstr(h, want));
	assert_non_null(strstr(h, "\r\nx: 2\r\n"));
	free(h);
}

/* The answer head proxy_head_response() makes from s, or -1. */
static int
answer(const char *s, int head_only, struct buf *o, struct proxy_answer *a)
{
	struct http_response_head rh;

	assert_true(http_parse_response(s, strlen(s), 0, &rh) > 0);
	buf_init(o);
	int r = proxy_head_response(o, &rh, head_only, a);
	buf_append_char(o, '\0');
	return r;
}

static void
test_answer_drops_hop_by_hop_headers(void **state)
{
	struct buf o;
	struct proxy_answer a;

	assert_int_equal(answer("HTTP/1.1 200 OK\r\n"
	                        "Connection: keep-alive, X-Internal\r\n"
	                        "Keep-Alive: timeout=5\r\n"
	                        "X-Internal: 1\r\n"
	                        "Upgrade: h2\r\n"
	                        "Trailer: X-T\r\n"
	                        "Content-Type: text/plain\r\n"
	                        "Content-Length: 12\r\n"
	                        "Set-Cookie: a=b\r\n\r\n",
	                     0, &o, &a),
	    0);
	assert_string_equal(o.data, "Content-Type: text/plain\r\nSet-Cookie: a=b\r\n");
	assert_false(a.no_body);
	assert_true(a.keepalive);
	assert_false(a.chunked);
	assert_false(a.close_delimited);
	assert_int_equal(a.body_left, 12);
	assert_int_equal(a.client_len, 12);
	buf_fini(&o);
}

static void
test_answer_chunked_wins_over_content_length(void **state)
{
	struct buf o;
	struct proxy_answer a;

	assert_int_equal(answer("HTTP/1.1 200 OK\r\n"
	                        "Transfer-Encoding: chunked\r\n"
	                        "Content-Length: 12\r\n\r\n",
	                     0, &o, &a),
	    0);
	assert_string_equal(o.data, "");
	assert_true(a.chunked);
	assert_false(a.close_delimited);
	assert_int_equal(a.client_len, -1);
	assert_true(a.keepalive);
	buf_fini(&o);
}

static void
test_answer_without_length_ends_at_close(void **state)
{
	struct buf o;
	struct proxy_answer a;

	assert_int_equal(answer("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", 0, &o, &a), 0);
	assert_true(a.close_delimited);
	assert_false(a.keepalive);
	assert_int_equal(a.client_len, -1);
	buf_fini(&o);
}

static void
test_answer_keepalive_needs_http_1_1_without_close(void **state)
{
	struct buf o;
	struct proxy_answer a;

	answer("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, &o, &a);
	assert_false(a.keepalive);
	buf_fini(&o);
	answer("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", 0, &o, &a);
	assert_false(a.keepalive);
	assert_string_equal(o.data, "");
	buf_fini(&o);
}

static void
test_answers_without_a_body(void **state)
{
	static const char *const heads[] = {
		"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
	};
	struct buf o;
	struct proxy_answer a;

	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		assert_int_equal(answer(heads[i], 0, &o, &a), 0);
		assert_true(a.no_body);
		assert_int_equal(a.body_left, 0);
		assert_int_equal(a.client_len, 0);
		assert_false(a.close_delimited);
		buf_fini(&o);
	}
	/* to HEAD: the length the backend declares is passed on, else none */
	answer("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", 1, &o, &a);
	assert_true(a.no_body);
	assert_int_equal(a.body_left, 0);
	assert_int_equal(a.client_len, 42);
	buf_fini(&o);
	answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, &o, &a);
	assert_true(a.no_body);
	assert_int_equal(a.client_len, -1);
	buf_fini(&o);
}

static void
test_switching_protocols_keeps_its_handshake(void **state)
{
	struct buf o;
	struct proxy_answer a;

	assert_int_equal(answer("HTTP/1.1 101 Switching Protocols\r\n"
	                        "Upgrade: websocket\r\n"
	                        "Connection: Upgrade\r\n"
	                        "Keep-Alive: x\r\n"
	                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
	                     0, &o, &a),
	    0);
	assert_string_equal(o.data,
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
	assert_true(a.no_body);
	buf_fini(&o);
}

static void
test_answer_with_a_bad_content_length_is_refused(void **state)
{
	static const char *const bad[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
	};
	struct buf o;
	struct proxy_answer a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(answer(bad[i], 0, &o, &a), -1);
		buf_fini(&o);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_head_drops_hop_by_hop_headers),
		cmocka_unit_test(test_request_line_becomes_http_1_1),
		cmocka_unit_test(test_x_forwarded_for_appends_the_client),
		cmocka_unit_test(test_forwarded_proto_follows_the_client_connection),
		cmocka_unit_test(test_forwarded_quotes_an_ipv6_client),
		cmocka_unit_test(test_host_kept_or_set_by_the_host_block),
		cmocka_unit_test(test_host_variable_without_a_host_header_is_empty),
		cmocka_unit_test(test_websocket_upgrade_is_kept),
		cmocka_unit_test(test_upgrade_needs_both_headers),
		cmocka_unit_test(test_request_framing_is_stated_anew),
		cmocka_unit_test(test_long_header_names_against_connection_tokens),
		cmocka_unit_test(test_answer_drops_hop_by_hop_headers),
		cmocka_unit_test(test_answer_chunked_wins_over_content_length),
		cmocka_unit_test(test_answer_without_length_ends_at_close),
		cmocka_unit_test(test_answer_keepalive_needs_http_1_1_without_close),
		cmocka_unit_test(test_answers_without_a_body),
		cmocka_unit_test(test_switching_protocols_keeps_its_handshake),
		cmocka_unit_test(test_answer_with_a_bad_content_length_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
