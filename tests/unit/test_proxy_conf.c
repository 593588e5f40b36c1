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
	expect_error("server {}", "t.conf:1: expected 'host' or 'listen', found 'server'");
	expect_error("host \"a\"\n\n proxy_pass", "t.conf:3: expected '{', found 'proxy_pass'");
	expect_error(
	    "host \"a\" {\n proxy_pass http://h:1\n}", "t.conf:3: expected ';', found '}'");
	expect_error("host \"a\" {\n listen 80;\n}", "t.conf:2: expected a directive");
	expect_error("host \"a\" {\n}", "t.conf:1: no proxy_pass in host a");
	expect_error("host \"a\" {\n proxy_pass ftp://h:1;\n}", "t.conf:2: proxy_pass takes");
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
	expect_error("host a { proxy_pass http://h:1; } \x01",
	    "expected 'host' or 'listen', found byte 0x01");
}

static const char with_tls[] = "listen 127.0.0.1:8443 ssl;\n"
                               "listen [::1]:8080;\n"
                               "host \"a.test\" {\n"
                               "    ssl_certificate /etc/a.pem;\n"
                               "    ssl_certificate_key \"/etc/a key.pem\";\n"
                               "    proxy_pass https://10.0.0.1;\n"
                               "    proxy_pass http://10.0.0.2;\n"
                               "    proxy_ssl_trusted_certificate /etc/ca.pem;\n"
                               "}\n"
                               "host \"b.test\" default {\n"
                               "    ssl_certificate /etc/b.pem;\n"
                               "    ssl_certificate_key /etc/b.key;\n"
                               "    proxy_pass https://backend.test:9443/;\n"
                               "    proxy_ssl_verify off;\n"
                               "}\n"
                               "host \"c.test\" { proxy_pass http://10.0.0.3:1; }\n";

static void
test_tls_directives_and_listen_lines(void **state)
{
	struct proxy_conf *c = parse_ok(with_tls);
	assert_int_equal(c->nlistens, 2);
	assert_string_equal(c->listens[0].host, "127.0.0.1");
	assert_int_equal(c->listens[0].port, 8443);
	assert_true(c->listens[0].ssl);
	assert_int_equal(c->listens[0].line, 1);
	assert_string_equal(c->listens[1].host, "::1");
	assert_false(c->listens[1].ssl);
	assert_true(proxy_conf_has_ssl(c));
	const struct proxy_vhost *a = &c->vhosts[0], *b = &c->vhosts[1];
	assert_string_equal(a->ssl_certificate, "/etc/a.pem");
	assert_string_equal(a->ssl_certificate_key, "/etc/a key.pem");
	assert_true(a->backends[0].tls);
	assert_int_equal(a->backends[0].port, 443);
	assert_false(a->backends[1].tls);
	assert_int_equal(a->backends[1].port, 80);
	assert_true(a->ssl_verify);
	assert_string_equal(a->ssl_trusted, "/etc/ca.pem");
	assert_false(b->ssl_verify);
	assert_string_equal(b->backends[0].host, "backend.test");
	assert_int_equal(b->backends[0].port, 9443);
	assert_true(c->vhosts[2].ssl_verify); /* on unless said otherwise */
	proxy_conf_free(c);
}

static void
test_sni_picks_the_named_block_else_the_default(void **state)
{
	struct proxy_conf *c = parse_ok(with_tls);
	assert_ptr_equal(proxy_conf_match_sni(c, "a.test"), &c->vhosts[0]);
	assert_ptr_equal(proxy_conf_match_sni(c, "A.TEST"), &c->vhosts[0]);
	assert_ptr_equal(proxy_conf_match_sni(c, "b.test"), &c->vhosts[1]);
	/* c.test has no certificate: the default block's serves it */
	assert_ptr_equal(proxy_conf_match_sni(c, "c.test"), &c->vhosts[1]);
	assert_ptr_equal(proxy_conf_match_sni(c, NULL), &c->vhosts[1]);
	proxy_conf_free(c);
	c = parse_ok("host x { proxy_pass http://h:1; }\n"
	             "host y { ssl_certificate y.pem; ssl_certificate_key y.key;"
	             " proxy_pass http://h:1; }\n");
	assert_ptr_equal(proxy_conf_match_sni(c, "zzz"), &c->vhosts[1]);
	assert_false(proxy_conf_has_ssl(c));
	proxy_conf_free(c);
	c = parse_ok(original);
	assert_null(proxy_conf_match_sni(c, "app1.local"));
	proxy_conf_free(c);
}

static void
test_tls_errors_name_the_line(void **state)
{
	expect_error("host a {\n ssl_certificate a.pem;\n proxy_pass http://h:1;\n}",
	    "t.conf:1: ssl_certificate and ssl_certificate_key go together, in host a");
	expect_error("host a {\n ssl_certificate_key a.key;\n proxy_pass http://h:1;\n}",
	    "t.conf:1: ssl_certificate and ssl_certificate_key go together");
	expect_error(
	    "host a {\n ssl_certificate \"\";\n}", "t.conf:2: ssl_certificate takes a file name");
	expect_error("host a {\n ssl_certificate;\n}", "t.conf:2: expected an argument, found ';'");
	expect_error("host a {\n proxy_pass https://h:1;\n proxy_ssl_verify maybe;\n}",
	    "t.conf:3: proxy_ssl_verify is on or off, not maybe");
	expect_error("host a {\n proxy_ssl_trusted_certificate \"\";\n}",
	    "t.conf:2: proxy_ssl_trusted_certificate takes a file name");
	expect_error("host a {\n proxy_pass https://h:0;\n}", "t.conf:2: proxy_pass takes");
	expect_error("\nlisten 127.0.0.1:8443 ssl;\nhost a { proxy_pass http://h:1; }",
	    "t.conf:2: listen ... ssl needs a host block with ssl_certificate");
	expect_error("listen 127.0.0.1:99999;\nhost a { proxy_pass http://h:1; }",
	    "t.conf:1: listen 127.0.0.1:99999: ");
	expect_error("listen 127.0.0.1:8443 tls;", "t.conf:1: expected 'ssl' or ';', found 'tls'");
	expect_error(
	    "listen 127.0.0.1:8443 ssl\nhost", "t.conf:2: expected 'ssl' or ';', found 'host'");
	expect_error("listen;", "t.conf:1: expected an address HOST:PORT after listen, found ';'");
	expect_error(
	    "listen a:1;\nlisten a:1 ssl;", "t.conf:2: a second listen line for the same address");
	expect_error("host a {\n listen a:1;\n}", "t.conf:2: expected a directive");
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
		cmocka_unit_test(test_tls_directives_and_listen_lines),
		cmocka_unit_test(test_sni_picks_the_named_block_else_the_default),
		cmocka_unit_test(test_tls_errors_name_the_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
