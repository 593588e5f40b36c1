/* test_proxy_conf.c — the proxy's configuration file: the original
 * design's file as written, host matching, every error with its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hychat/proxy_conf.h"

static const char original[] = "host \"192.168.56.103:8080\" {\n"
                               "    proxy_pass http://192.168.56.103:9000;\n"
                               "}\n"
                               "host \"app1.local\" {\n"
                               "    proxy_pass http://192.168.56.103:9001;\n"
                               "}\n"
                               "host \"app2.local\" {\n"
                               "    proxy_set_header Host $host;\n"
                               "    proxy_pass http://192.168.56.210:9002;\n"
                               "    proxy_pass http://192.168.56.220:9002;\n"
                               "    dist_policy round-robin\n"
                               "}\n";

static struct proxy_conf *
parse_ok(const char *s)
{
	struct proxy_conf *c = NULL;
	char err[256] = "";
	if (proxy_conf_parse(s, strlen(s), "t.conf", &c, err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	return c;
}

static void
expect_error(const char *s, const char *msg)
{
	struct proxy_conf *c = NULL;
	char err[256] = "";
	assert_int_equal(proxy_conf_parse(s, strlen(s), "t.conf", &c, err, sizeof(err)), -1);
	assert_null(c);
	if (strstr(err, msg) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, msg);
}

static void
test_original_file_is_accepted_as_written(void **state)
{
	struct proxy_conf *c = parse_ok(original);
	assert_int_equal(c->nvhosts, 3);
	assert_string_equal(c->vhosts[0].host, "192.168.56.103");
	assert_int_equal(c->vhosts[0].port, 8080);
	assert_int_equal(c->vhosts[0].backends[0].port, 9000);
	assert_int_equal(c->vhosts[1].port, -1);
	const struct proxy_vhost *v = &c->vhosts[2];
	assert_int_equal(v->nbackends, 2);
	assert_string_equal(v->backends[1].name, "192.168.56.220:9002");
	assert_int_equal(v->policy, PROXY_ROUND_ROBIN);
	assert_int_equal(v->nset, 1);
	assert_string_equal(v->set[0].name, "Host");
	assert_string_equal(v->set[0].value, "$host");
	assert_null(c->fallback);
	proxy_conf_free(c);
}

static void
test_host_matching_with_and_without_port(void **state)
{
	struct proxy_conf *c = parse_ok(original);
	assert_ptr_equal(proxy_conf_match(c, "192.168.56.103:8080", 19, 8080), &c->vhosts[0]);
	assert_ptr_equal(proxy_conf_match(c, "192.168.56.103", 14, 8080), &c->vhosts[0]);
	assert_null(proxy_conf_match(c, "192.168.56.103:9999", 19, 8080));
	assert_ptr_equal(proxy_conf_match(c, "APP1.local:1234", 15, 8080), &c->vhosts[1]);
	assert_ptr_equal(proxy_conf_match(c, "app2.local", 10, 8080), &c->vhosts[2]);
	assert_null(proxy_conf_match(c, "other.local", 11, 8080));
	assert_null(proxy_conf_match(c, NULL, 0, 8080));
	proxy_conf_free(c);
}

static void
test_default_block_catches_unknown_hosts(void **state)
{
	struct proxy_conf *c =
	    parse_ok("host \"a\" default { proxy_pass http://127.0.0.1:1; }\n"
	             "host b { proxy_pass http://127.0.0.1:2/; dist_policy random; "
	             "proxy_connect_timeout 500ms; proxy_read_timeout 2s; "
	             "max_fails 3; fail_timeout 1m; }");
	assert_ptr_equal(proxy_conf_match(c, "zzz", 3, 80), &c->vhosts[0]);
	assert_ptr_equal(proxy_conf_match(c, "b", 1, 80), &c->vhosts[1]);
	const struct proxy_vhost *b = &c->vhosts[1];
	assert_int_equal(b->policy, PROXY_RANDOM);
	assert_int_equal(b->connect_timeout_ms, 500);
	assert_int_equal(b->read_timeout_ms, 2000);
	assert_int_equal(b->max_fails, 3);
	assert_int_equal(b->fail_timeout_ms, 60000);
	proxy_conf_free(c);
}

static void
test_comments_and_default_port(void **state)
{
	struct proxy_conf *c =
	    parse_ok("# front\nhost \"x\" { # the app\n proxy_pass http://h; }\n");
	assert_int_equal(c->vhosts[0].backends[0].port, 80);
	proxy_conf_free(c);
}

static void
test_errors_name_file_line_and_expectation(void **state)
{
	expect_error("", "t.conf:1: expected at least one host block");
	expect_error("server {}", "t.conf:1: expected 'host', found 'server'");
	expect_error("host \"a\"\n\n proxy_pass", "t.conf:3: expected '{', found 'proxy_pass'");
	expect_error(
	    "host \"a\" {\n proxy_pass http://h:1\n}", "t.conf:3: expected ';', found '}'");
	expect_error("host \"a\" {\n listen 80;\n}", "t.conf:2: expected a directive");
	expect_error("host \"a\" {\n}", "t.conf:1: no proxy_pass in host a");
	expect_error("host \"a\" {\n proxy_pass https://h:1;\n}", "t.conf:2: proxy_pass takes");
	expect_error("host \"a\" {\n proxy_pass http://h:99999;\n}", "t.conf:2: proxy_pass takes");
	expect_error("host \"a\" {\n dist_policy fastest;\n}", "t.conf:2: dist_policy is");
	expect_error("host \"a\" {\n proxy_pass http://h:1;\n",
	    "t.conf:3: expected a directive or '}', found end of file");
	expect_error("host \"a {\n",
	    "t.conf:1: expected a host name in quotes, found an unterminated string");
	expect_error("host a { proxy_pass http://h:1; }\nhost a { proxy_pass http://h:1; }",
	    "t.conf:2: a second block for host a");
	expect_error(
	    "host a default { proxy_pass http://h:1; }\nhost b default { proxy_pass http://h:1; }",
	    "t.conf:2: a second host marked default");
	expect_error(
	    "host a { proxy_read_timeout soon; proxy_pass http://h:1; }", "expected a duration");
	expect_error("host a { proxy_set_header X-A \"a\x01\"; proxy_pass http://h:1; }",
	    "control character");
	expect_error("host a { proxy_pass http://h:1; } \x01", "expected 'host', found byte 0x01");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_original_file_is_accepted_as_written),
		cmocka_unit_test(test_host_matching_with_and_without_port),
		cmocka_unit_test(test_default_block_catches_unknown_hosts),
		cmocka_unit_test(test_comments_and_default_port),
		cmocka_unit_test(test_errors_name_file_line_and_expectation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
