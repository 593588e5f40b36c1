/* test_router.c — routes, parameters, 404, 405 with Allow, fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hychat/router.h"

static const char *called;

static void
h_user(struct http_request *req, struct http_response *res, void *ctx)
{
	size_t len;
	const char *v = http_request_param(req, "name", &len);
	called = "user";
	res->status = 200;
	buf_append(&res->body, v, len);
}

static void
h_list(struct http_request *req, struct http_response *res, void *ctx)
{
	called = "list";
	res->status = 200;
}

static void
h_post(struct http_request *req, struct http_response *res, void *ctx)
{
	called = "post";
	res->status = 201;
}

static void
h_fallback(struct http_request *req, struct http_response *res, void *ctx)
{
	called = "fallback";
	res->status = 299;
}

static const struct router_route routes[] = {
	{ HTTP_GET, "/users", h_list },
	{ HTTP_GET, "/users/:name", h_user },
	{ HTTP_POST, "/users", h_post },
	{ 0, NULL, NULL },
};

static int
dispatch(struct router *r, enum http_method m, const char *path, struct http_response *res)
{
	struct http_request req;
	char p[256];

	memset(&req, 0, sizeof(req));
	snprintf(p, sizeof(p), "%s", path);
	req.method = m;
	req.path = p;
	req.path_len = strlen(p);
	called = NULL;
	http_response_reset(res);
	res->headers.len = 0;
	router_dispatch(r, &req, res);
	return res->status;
}

static void
test_literal_and_parameter_routes_match(void **state)
{
	struct router *r = router_new(NULL);
	struct http_response res;
	http_response_init(&res);
	router_add_table(r, routes);

	assert_int_equal(dispatch(r, HTTP_GET, "/users", &res), 200);
	assert_string_equal(called, "list");
	assert_int_equal(dispatch(r, HTTP_GET, "/users/alice", &res), 200);
	assert_string_equal(called, "user");
	assert_memory_equal(res.body.data, "alice", 5);
	assert_int_equal(dispatch(r, HTTP_GET, "//users//bob/", &res), 200);
	assert_int_equal(dispatch(r, HTTP_POST, "/users", &res), 201);
	http_response_fini(&res);
	router_free(r);
}

static void
test_head_is_served_by_get_route(void **state)
{
	struct router *r = router_new(NULL);
	struct http_response res;
	http_response_init(&res);
	router_add_table(r, routes);
	assert_int_equal(dispatch(r, HTTP_HEAD, "/users", &res), 200);
	assert_string_equal(called, "list");
	http_response_fini(&res);
	router_free(r);
}

static void
test_wrong_method_is_405_with_allow(void **state)
{
	struct router *r = router_new(NULL);
	struct http_response res;
	http_response_init(&res);
	router_add_table(r, routes);
	assert_int_equal(dispatch(r, HTTP_DELETE, "/users", &res), 405);
	assert_null(called);
	assert_non_null(strstr(res.headers.data, "Allow: GET, HEAD, POST\r\n"));
	http_response_fini(&res);
	router_free(r);
}

static void
test_unknown_path_is_404_or_fallback(void **state)
{
	struct router *r = router_new(NULL);
	struct http_response res;
	http_response_init(&res);
	router_add_table(r, routes);
	assert_int_equal(dispatch(r, HTTP_GET, "/nope", &res), 404);
	assert_int_equal(dispatch(r, HTTP_GET, "/users/a/b", &res), 404);
	router_set_fallback(r, h_fallback);
	assert_int_equal(dispatch(r, HTTP_GET, "/nope", &res), 299);
	assert_string_equal(called, "fallback");
	http_response_fini(&res);
	router_free(r);
}

static void
test_too_many_segments_never_match(void **state)
{
	struct router *r = router_new(NULL);
	struct http_response res;
	http_response_init(&res);
	router_add_table(r, routes);
	assert_int_equal(dispatch(r, HTTP_GET, "/a/b/c/d/e/f/g/h/i/j/k", &res), 404);
	http_response_fini(&res);
	router_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_and_parameter_routes_match),
		cmocka_unit_test(test_head_is_served_by_get_route),
		cmocka_unit_test(test_wrong_method_is_405_with_allow),
		cmocka_unit_test(test_unknown_path_is_404_or_fallback),
		cmocka_unit_test(test_too_many_segments_never_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
