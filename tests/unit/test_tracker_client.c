/* test_tracker_client.c — what a tracker URL may be, decided before any
 * connection: https with or without a CA file and a pin; plain http on
 * loopback only (127.0.0.0/8, ::1, localhost) unless allowed; a CA file
 * or a pin only with https; a pin only as sha256// and 32 bytes of
 * base64, one or several separated by ';'. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hychat/tracker_client.h"

#define PIN_A "sha256//f7eFRkhYnHrElA7J+tW7L5VBBBJlBWcZuj+PnqHh0eU="
#define PIN_B "sha256//1gwcbsFisdZnfbayKTp8YK5dEHuzK1sOvOnXnv0zd4s="

struct url_case {
	const char *url, *ca, *pin;
	int allow_insecure;
	const char *refused; /* a word of the cause, or NULL: accepted */
	int tls, loopback; /* when accepted */
};

static const struct url_case cases[] = {
	{ "http://127.0.0.1:8001", NULL, NULL, 0, NULL, 0, 1 },
	{ "http://127.9.8.7:8001/", NULL, NULL, 0, NULL, 0, 1 },
	{ "http://localhost:8001", NULL, NULL, 0, NULL, 0, 1 },
	{ "http://LocalHost:8001", NULL, NULL, 0, NULL, 0, 1 },
	{ "http://[::1]:8001", NULL, NULL, 0, NULL, 0, 1 },
	{ "http://[::ffff:127.0.0.1]:8001", NULL, NULL, 0, NULL, 0, 1 },
	{ "127.0.0.1:8001", NULL, NULL, 0, NULL, 0, 1 }, /* no scheme: http */
	{ "http://192.0.2.1:1", NULL, NULL, 0, "--allow-insecure-tracker", 0, 0 },
	{ "http://128.0.0.1:1", NULL, NULL, 0, "--allow-insecure-tracker", 0, 0 },
	{ "http://[::2]:1", NULL, NULL, 0, "--allow-insecure-tracker", 0, 0 },
	{ "http://[::ffff:192.0.2.1]:1", NULL, NULL, 0, "--allow-insecure-tracker", 0, 0 },
	{ "http://localhost.example.org:1", NULL, NULL, 0, "--allow-insecure-tracker", 0, 0 },
	{ "http://127.0.0.1.example.org:1", NULL, NULL, 0, "--allow-insecure-tracker", 0, 0 },
	{ "example.org:8001", NULL, NULL, 0, "--allow-insecure-tracker", 0, 0 },
	{ "http://192.0.2.1:1", NULL, NULL, 1, NULL, 0, 0 },
	{ "https://192.0.2.1:1", NULL, NULL, 0, NULL, 1, 0 },
	{ "HTTPS://tracker.example.org", NULL, NULL, 0, NULL, 1, 0 },
	{ "https://192.0.2.1:1", "/etc/ssl/ca.pem", NULL, 0, NULL, 1, 0 },
	{ "https://192.0.2.1:1", NULL, PIN_A, 0, NULL, 1, 0 },
	{ "https://192.0.2.1:1", NULL, PIN_A ";" PIN_B, 0, NULL, 1, 0 },
	{ "https://192.0.2.1:1", "/etc/ssl/ca.pem", PIN_A, 0, NULL, 1, 0 },
	{ "http://127.0.0.1:1", "/etc/ssl/ca.pem", NULL, 0, "needs an https://", 0, 0 },
	{ "http://127.0.0.1:1", NULL, PIN_A, 0, "needs an https://", 0, 0 },
	{ "https://192.0.2.1:1", NULL, "f7eFRkhYnHrElA7J+tW7L5VBBBJlBWcZuj+PnqHh0eU=", 0, "the pin",
	    0, 0 },
	{ "https://192.0.2.1:1", NULL, "sha256//", 0, "the pin", 0, 0 },
	{ "https://192.0.2.1:1", NULL, "sha256//AAAA", 0, "the pin", 0, 0 },
	{ "https://192.0.2.1:1", NULL, PIN_A ";", 0, "the pin", 0, 0 },
	{ "https://192.0.2.1:1", NULL, PIN_A "x", 0, "the pin", 0, 0 },
	{ "https://192.0.2.1:1", NULL, "sha1//AAAA", 0, "the pin", 0, 0 },
	{ "ftp://127.0.0.1:21", NULL, NULL, 0, "only http:// and https://", 0, 0 },
	{ "http://", NULL, NULL, 0, "not a URL", 0, 0 },
	{ "", NULL, NULL, 0, "not a URL", 0, 0 },
};

static void
test_urls(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct url_case *c = &cases[i];
		struct tracker_client_config cfg = { .base_url = c->url,
			.ca_file = c->ca,
			.pin = c->pin,
			.allow_insecure = c->allow_insecure };
		struct tracker_client *tc;
		char *cause = NULL;
		uv_loop_t loop;

		assert_int_equal(uv_loop_init(&loop), 0);
		tc = tracker_client_new(&loop, &cfg, &cause);
		if (c->refused != NULL) {
			if (tc != NULL || cause == NULL || strstr(cause, c->refused) == NULL)
				fail_msg("%s (pin %s): want refused with \"%s\", got %s", c->url,
				    c->pin != NULL ? c->pin : "-", c->refused,
				    cause != NULL ? cause : "accepted");
			free(cause);
		} else {
			if (tc == NULL)
				fail_msg("%s: want accepted, got %s", c->url, cause);
			assert_int_equal(tracker_client_is_tls(tc), c->tls);
			if (tracker_client_is_loopback(tc) != c->loopback)
				fail_msg("%s: loopback %d", c->url, c->loopback);
			assert_null(tracker_client_tls_error(tc));
			tracker_client_free(tc);
		}
		uv_run(&loop, UV_RUN_DEFAULT);
		assert_int_equal(uv_loop_close(&loop), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
