/* test_tracker_api.c — the tracker's handlers through its router, on an
 * in-memory store: what a request without a query string or with a
 * malformed one is answered. The handlers that hash passwords need a
 * loop and are left to the integration tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/tracker/tracker_internal.h"

#define TOKEN_TTL_MS 60000

/* A store that holds nothing and never fails. */
static void
mem_close(struct store *st)
{
}

static int
mem_ok(struct store *st, const char *a, const char *b, char **cause)
{
	return 0;
}

static int
mem_user_hash(struct store *st, const char *name, char *out, char **cause)
{
	return 0;
}

static int
mem_user_count(struct store *st, uint64_t *n, char **cause)
{
	*n = 0;
	return 0;
}

static int
mem_pubkey_set(struct store *st, const char *name, const uint8_t *key, size_t len, char **cause)
{
	return 0;
}

static int
mem_each_member(struct store *st, void (*fn)(const char *channel, const char *name, void *arg),
    void *arg, char **cause)
{
	return 0;
}

static int
mem_each_pubkey(struct store *st,
    void (*fn)(const char *name, const uint8_t *key, size_t len, void *arg), void *arg,
    char **cause)
{
	return 0;
}

static const struct store_ops mem_ops = {
	.close = mem_close,
	.user_add = mem_ok,
	.user_set_hash = mem_ok,
	.user_hash = mem_user_hash,
	.user_count = mem_user_count,
	.pubkey_set = mem_pubkey_set,
	.join = mem_ok,
	.leave = mem_ok,
	.each_member = mem_each_member,
	.each_pubkey = mem_each_pubkey,
};

static struct store mem_store = { .ops = &mem_ops };

struct fixture {
	struct tracker *t;
	char auth[sizeof("Bearer ") + REG_TOKEN_TEXT_SIZE];
};

static int
setup(void **state)
{
	struct tracker_config cfg;
	struct fixture *f = calloc(1, sizeof(*f));
	char token[REG_TOKEN_TEXT_SIZE], *cause = NULL;

	tracker_set_kdf_min(1);
	tracker_config_defaults(&cfg);
	cfg.ttl_ms = 60000;
	cfg.token_ttl_ms = TOKEN_TTL_MS;
	if (f == NULL || (f->t = tracker_new(&mem_store, &cfg, &cause)) == NULL)
		return -1;
	registry_token_issue(tracker_registry(f->t), "alice", hy_now_ms() + TOKEN_TTL_MS, token);
	snprintf(f->auth, sizeof(f->auth), "Bearer %s", token);
	registry_peer_set(tracker_registry(f->t), "alice", "127.0.0.1", 5000, hy_now_ms() + 60000);
	registry_peer_set(tracker_registry(f->t), "bob", "127.0.0.1", 5001, hy_now_ms() + 60000);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	tracker_free(f->t);
	free(f);
	return 0;
}

/* Serves GET path with query (NULL: none, as the parser gives a target
 * without '?') and returns the status; the body is left in res. */
static int
get(struct fixture *f, const char *path, const char *query, struct http_response *res)
{
	struct http_request req;
	char p[64];

	memset(&req, 0, sizeof(req));
	snprintf(p, sizeof(p), "%s", path);
	req.method = HTTP_GET;
	req.path = p;
	req.path_len = strlen(p);
	req.head.query = query;
	req.head.query_len = query != NULL ? strlen(query) : 0;
	req.head.headers[0].name = "Authorization";
	req.head.headers[0].name_len = strlen("Authorization");
	req.head.headers[0].value = f->auth;
	req.head.headers[0].value_len = strlen(f->auth);
	req.head.num_headers = 1;
	http_response_reset(res);
	router_dispatch(tracker_router(f->t), &req, res);
	buf_append_char(&res->body, '\0'); /* for the string asserts */
	return res->status;
}

/* Found by fuzz_tracker_api: query_get() computed NULL + 0 when the
 * target had no '?', undefined behaviour (clang's UBSan reports it; the
 * fuzz corpus keeps the input). The answer must list every peer. */
static void
test_get_list_without_a_query_lists_every_peer(void **state)
{
	struct fixture *f = *state;
	struct http_response res;

	http_response_init(&res);
	assert_int_equal(get(f, "/get-list", NULL, &res), 200);
	assert_non_null(strstr(res.body.data, "\"username\":\"alice\""));
	assert_non_null(strstr(res.body.data, "\"username\":\"bob\""));
	assert_non_null(strstr(res.body.data, "\"count\":2"));
	http_response_fini(&res);
}

static void
test_get_list_query_pages_and_refuses_bad_escapes(void **state)
{
	struct fixture *f = *state;
	struct http_response res;

	http_response_init(&res);
	assert_int_equal(get(f, "/get-list", "limit=1", &res), 200);
	assert_non_null(strstr(res.body.data, "\"count\":1"));
	assert_non_null(strstr(res.body.data, "\"next\":\"alice\""));
	assert_int_equal(get(f, "/get-list", "limit=1&after=alice", &res), 200);
	assert_non_null(strstr(res.body.data, "\"username\":\"bob\""));
	assert_null(strstr(res.body.data, "\"username\":\"alice\""));
	assert_int_equal(get(f, "/get-list", "channel=%zz", &res), 400);
	assert_int_equal(get(f, "/get-list", "limit=0", &res), 400);
	assert_int_equal(get(f, "/get-list", "", &res), 200);
	/* members=all is for a channel's members, offline ones too. */
	assert_int_equal(get(f, "/get-list", "members=all", &res), 400);
	assert_int_equal(get(f, "/get-list", "channel=general&members=some", &res), 400);
	assert_int_equal(get(f, "/get-list", "channel=nochannel&members=all", &res), 404);
	http_response_fini(&res);
}

/* Serves POST path with a JSON body; returns the status, body in res. */
static int
post(struct fixture *f, const char *path, const char *body, struct http_response *res)
{
	struct http_request req;
	char p[64];

	memset(&req, 0, sizeof(req));
	snprintf(p, sizeof(p), "%s", path);
	req.method = HTTP_POST;
	req.path = p;
	req.path_len = strlen(p);
	req.body = body;
	req.body_len = strlen(body);
	req.head.headers[0].name = "Authorization";
	req.head.headers[0].name_len = strlen("Authorization");
	req.head.headers[0].value = f->auth;
	req.head.headers[0].value_len = strlen(f->auth);
	req.head.num_headers = 1;
	http_response_reset(res);
	router_dispatch(tracker_router(f->t), &req, res);
	buf_append_char(&res->body, '\0');
	return res->status;
}

static void
test_channels_page_with_next_and_refuse_bad_queries(void **state)
{
	struct fixture *f = *state;
	struct http_response res;

	http_response_init(&res);
	registry_join(tracker_registry(f->t), "b", "bob");
	registry_join(tracker_registry(f->t), "a", "bob");
	registry_join(tracker_registry(f->t), "c", "bob");
	assert_int_equal(get(f, "/channels", "limit=2", &res), 200);
	assert_non_null(strstr(res.body.data, "\"count\":2"));
	assert_non_null(strstr(res.body.data, "\"total\":3"));
	assert_non_null(strstr(res.body.data, "\"next\":\"b\""));
	assert_int_equal(get(f, "/channels", "after=%23b", &res), 200);
	assert_non_null(strstr(res.body.data, "\"name\":\"c\""));
	assert_null(strstr(res.body.data, "\"name\":\"a\""));
	assert_null(strstr(res.body.data, "\"next\""));
	assert_int_equal(get(f, "/channels", NULL, &res), 200);
	assert_int_equal(get(f, "/channels", "after=%zz", &res), 400);
	assert_int_equal(get(f, "/channels", "after=a%20b", &res), 400);
	assert_int_equal(get(f, "/channels", "limit=-1", &res), 400);
	http_response_fini(&res);
}

static void
test_submit_info_keeps_to_the_caps_and_the_address_rules(void **state)
{
	struct fixture *f = *state;
	struct http_response res;

	http_response_init(&res);
	f->t->cfg.max_user_channels = 2;
	f->t->cfg.max_channels = 3;
	assert_int_equal(
	    post(f, "/submit-info",
	        "{\"ip\":\"10.0.0.1\",\"port\":1,\"channels\":[\"x\",\"y\",\"z\"]}", &res),
	    200);
	assert_non_null(strstr(res.body.data, "--max-channels-per-user"));
	assert_non_null(strstr(res.body.data, "\"refused_channels\":[\"z\"]"));
	assert_int_equal(registry_channel_count(tracker_registry(f->t)), 2);
	assert_true(registry_peer_online(tracker_registry(f->t), "alice", hy_now_ms()));
	assert_int_equal(
	    post(f, "/submit-info",
	        "{\"ip\":\"10.0.0.1\",\"port\":1,\"channels\":[\"x\",\"#x\",\"y\"]}", &res),
	    200);
	assert_null(strstr(res.body.data, "refused_channels"));
	registry_join(tracker_registry(f->t), "w", "bob");
	registry_join(
	    tracker_registry(f->t), "v", "bob"); /* the store may hold more than the cap */
	assert_int_equal(post(f, "/add-list", "{\"channel\":\"x\"}", &res), 200);
	assert_int_equal(post(f, "/leave", "{\"channel\":\"x\"}", &res), 200);
	assert_int_equal(post(f, "/add-list", "{\"channel\":\"u\"}", &res), 403);
	assert_non_null(strstr(res.body.data, "--max-channels)"));
	assert_int_equal(post(f, "/add-list", "{\"channel\":\"w\"}", &res), 200);
	f->t->cfg.allow_loopback_peers = 0;
	assert_int_equal(
	    post(f, "/submit-info", "{\"ip\":\"::ffff:127.1.2.3\",\"port\":1}", &res), 403);
	assert_int_equal(post(f, "/submit-info", "{\"ip\":\"ff05::2\",\"port\":1}", &res), 403);
	assert_int_equal(post(f, "/submit-info", "{\"ip\":\"::2\",\"port\":1}", &res), 403);
	assert_int_equal(post(f, "/submit-info", "{\"ip\":\"::a00:1\",\"port\":1}", &res), 200);
	f->t->cfg.allow_loopback_peers = 1;
	assert_int_equal(post(f, "/submit-info", "{\"ip\":\"::1\",\"port\":1}", &res), 200);
	assert_int_equal(post(f, "/submit-info", "{\"ip\":\"0.0.0.0\",\"port\":1}", &res), 403);
	http_response_fini(&res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_get_list_without_a_query_lists_every_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_get_list_query_pages_and_refuses_bad_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_channels_page_with_next_and_refuse_bad_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_submit_info_keeps_to_the_caps_and_the_address_rules, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
