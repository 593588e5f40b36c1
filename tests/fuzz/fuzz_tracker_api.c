/* fuzz_tracker_api.c — libFuzzer target for the tracker's JSON request
 * handlers: requests go through the tracker's own router and handlers
 * (bearer token, JSON body, the username check, the fields, then the
 * registry), on an in-memory store that the input may make fail.
 *
 * Input: up to FUZZ_MAX_REQUESTS records separated by byte 0xff, each
 * [route][flags][body...], served in order on one tracker so that later
 * requests see what earlier ones did. For a GET the body is the query
 * string, or for /peers/ the rest of the path (the username looked up).
 * Route: index into routes[] below. Flags: bits 0-1 pick the
 * token (alice's, bob's, none, a wrong one); bit 2 makes the store fail;
 * bit 3 refuses loopback peer addresses (as a tracker that does not
 * listen on loopback). The caps are small (FUZZ_MAX_*) so that a few
 * requests reach them; the mailbox too (FUZZ_MAIL_*), held in memory.
 *
 * /register and /login would hash on libuv's thread pool; the store
 * answers "the name is taken" to /register and fails for /login, so that
 * both answer at once after their body checks.
 *
 * Checks, besides the sanitizers: every answer is synchronous, has a
 * known status, and a body that is one JSON object (the listing, which
 * is written by hand, included). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/tracker/tracker_internal.h"
#include "hychat/log.h"

#define FUZZ_SEP 0xff
#define FUZZ_MAX_REQUESTS 16
#define FUZZ_PATH_MAX 256
#define FUZZ_TOKEN_TTL_MS (3600 * 1000)
/* small caps, so that 16 requests can reach them */
#define FUZZ_MAX_USER_CHANNELS 8
#define FUZZ_MAX_CHANNELS 12
#define FUZZ_PAGE_MAX 4
#define FUZZ_MAIL_SLOTS 4 /* messages the in-memory mailbox holds */
#define FUZZ_MAIL_MESSAGE_MAX 64
#define FUZZ_MAIL_RATE 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
	enum http_method method;
	const char *path;
	int login; /* the store fails user_hash (see above) */
	int tail; /* the body goes at the end of the path */
} routes[] = {
	{ HTTP_POST, "/submit-info", 0 },
	{ HTTP_POST, "/heartbeat", 0 },
	{ HTTP_POST, "/add-list", 0 },
	{ HTTP_POST, "/leave", 0 },
	{ HTTP_POST, "/get-list", 0 },
	{ HTTP_GET, "/get-list", 0 },
	{ HTTP_GET, "/channels", 0 },
	{ HTTP_GET, "/stats", 0 },
	{ HTTP_POST, "/logout", 0 },
	{ HTTP_POST, "/register", 0 },
	{ HTTP_POST, "/login", 1 },
	{ HTTP_GET, "/peers/", 0, 1 },
	{ HTTP_GET, "/submit-info", 0 }, /* 405 */
	{ HTTP_POST, "/nowhere", 0 }, /* 404 */
	{ HTTP_POST, "/mailbox/", 0, 1 }, /* a deposit: the body is the name */
	{ HTTP_POST, "/mailbox/bob", 0 },
	{ HTTP_POST, "/mailbox/ack", 0 },
	{ HTTP_GET, "/mailbox", 0 },
	{ HTTP_POST, "/rendezvous", 0 },
	{ HTTP_GET, "/hints", 0 },
	{ HTTP_GET, "/whoami", 0 },
};

/* The in-memory store: it remembers nothing and fails on demand. */
struct mem_store {
	struct store base;
	int fail;
	int login;
	struct {
		char name[HY_NAME_MAX + 1];
		uint64_t id;
		size_t len;
		uint8_t blob[FUZZ_MAIL_MESSAGE_MAX];
	} mail[FUZZ_MAIL_SLOTS];
	uint64_t mail_next;
};

static int
mem_fail(struct store *st, char **cause)
{
	if (!((struct mem_store *)st)->fail)
		return 0;
	*cause = xstrdup("fuzz: the store fails");
	return -1;
}

static void
mem_close(struct store *st)
{
	(void)st;
}

static int
mem_user_add(struct store *st, const char *name, const char *hash, char **cause)
{
	return mem_fail(st, cause) < 0 ? -1 : STORE_EXISTS;
}

static int
mem_user_set_hash(struct store *st, const char *name, const char *hash, char **cause)
{
	return mem_fail(st, cause);
}

static int
mem_user_hash(struct store *st, const char *name, char *out, char **cause)
{
	if (((struct mem_store *)st)->login) {
		*cause = xstrdup("fuzz: no hashing here");
		return -1;
	}
	if (mem_fail(st, cause) < 0)
		return -1;
	strcpy(out, "$argon2id$not-a-hash");
	return 1;
}

static int
mem_user_count(struct store *st, uint64_t *n, char **cause)
{
	*n = 2;
	return mem_fail(st, cause);
}

static int
mem_pubkey_set(struct store *st, const char *name, const uint8_t *key, size_t len, char **cause)
{
	return mem_fail(st, cause);
}

static int
mem_join(struct store *st, const char *channel, const char *name, char **cause)
{
	return mem_fail(st, cause);
}

static int
mem_leave(struct store *st, const char *channel, const char *name, char **cause)
{
	return mem_fail(st, cause);
}

/* What tracker_new() loads: one channel, one key. */
static int
mem_each_member(struct store *st, void (*fn)(const char *channel, const char *name, void *arg),
    void *arg, char **cause)
{
	fn("general", "alice", arg);
	fn("general", "bob", arg);
	fn("bad channel", "alice", arg); /* skipped by the loader */
	return 0;
}

static int
mem_each_pubkey(struct store *st,
    void (*fn)(const char *name, const uint8_t *key, size_t len, void *arg), void *arg,
    char **cause)
{
	static const uint8_t key[32] = { 1, 2, 3 };

	fn("alice", key, sizeof(key), arg);
	return 0;
}

static int
mem_mail_add(struct store *base, const char *name, const uint8_t *blob, size_t len, uint64_t now_ms,
    uint64_t max_msgs, uint64_t max_bytes, uint64_t *id, char **cause)
{
	struct mem_store *st = (struct mem_store *)base;
	uint64_t n = 0, bytes = 0;
	size_t slot = FUZZ_MAIL_SLOTS;

	(void)now_ms;
	if (mem_fail(base, cause) < 0)
		return -1;
	if (len > FUZZ_MAIL_MESSAGE_MAX)
		abort(); /* the handler let a message past its size through */
	for (size_t i = 0; i < FUZZ_MAIL_SLOTS; i++) {
		if (st->mail[i].id == 0)
			slot = slot < FUZZ_MAIL_SLOTS ? slot : i;
		else if (strcmp(st->mail[i].name, name) == 0)
			n++, bytes += st->mail[i].len;
	}
	if (slot == FUZZ_MAIL_SLOTS || n + 1 > max_msgs || bytes + len > max_bytes)
		return STORE_FULL;
	snprintf(st->mail[slot].name, sizeof(st->mail[slot].name), "%s", name);
	memcpy(st->mail[slot].blob, blob, len);
	st->mail[slot].len = len;
	st->mail[slot].id = *id = ++st->mail_next;
	return 0;
}

static int
mem_mail_count(struct store *base, const char *name, uint64_t *msgs, uint64_t *bytes, char **cause)
{
	struct mem_store *st = (struct mem_store *)base;

	*msgs = *bytes = 0;
	for (size_t i = 0; i < FUZZ_MAIL_SLOTS; i++)
		if (st->mail[i].id != 0 && strcmp(st->mail[i].name, name) == 0)
			++*msgs, *bytes += st->mail[i].len;
	return mem_fail(base, cause);
}

/* Slots are filled in id order only until one is freed: good enough for
 * the handler, which does not check the order. */
static int
mem_mail_list(struct store *base, const char *name, uint64_t after, size_t limit, size_t max_bytes,
    void (*fn)(uint64_t id, uint64_t time_ms, const uint8_t *blob, size_t len, void *arg),
    void *arg, int *more, char **cause)
{
	struct mem_store *st = (struct mem_store *)base;
	size_t n = 0;

	(void)max_bytes;
	*more = 0;
	if (mem_fail(base, cause) < 0)
		return -1;
	for (size_t i = 0; i < FUZZ_MAIL_SLOTS; i++) {
		if (st->mail[i].id <= after || strcmp(st->mail[i].name, name) != 0)
			continue;
		if (n == limit) {
			*more = 1;
			break;
		}
		fn(st->mail[i].id, 0, st->mail[i].blob, st->mail[i].len, arg);
		n++;
	}
	return (int)n;
}

static int
mem_mail_delete(struct store *base, const char *name, const uint64_t *ids, size_t n, char **cause)
{
	struct mem_store *st = (struct mem_store *)base;
	int deleted = 0;

	if (mem_fail(base, cause) < 0)
		return -1;
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < FUZZ_MAIL_SLOTS; i++)
			if (st->mail[i].id == ids[k] && strcmp(st->mail[i].name, name) == 0) {
				st->mail[i].id = 0;
				deleted++;
			}
	return deleted;
}

static int
mem_mail_expire(struct store *base, uint64_t before_ms, char **cause)
{
	(void)before_ms;
	return mem_fail(base, cause) < 0 ? -1 : 0;
}

static const struct store_ops mem_ops = {
	.close = mem_close,
	.user_add = mem_user_add,
	.user_set_hash = mem_user_set_hash,
	.user_hash = mem_user_hash,
	.user_count = mem_user_count,
	.pubkey_set = mem_pubkey_set,
	.join = mem_join,
	.leave = mem_leave,
	.each_member = mem_each_member,
	.each_pubkey = mem_each_pubkey,
	.mail_add = mem_mail_add,
	.mail_count = mem_mail_count,
	.mail_list = mem_mail_list,
	.mail_delete = mem_mail_delete,
	.mail_expire = mem_mail_expire,
};

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tracker_set_kdf_min(1);
	log_init("fuzz_tracker_api", (enum log_level)(LOG_ERROR + 1)); /* quiet */
	return 0;
}

static void
check_answer(const struct http_response *res)
{
	static const int known[] = { 200, 201, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503,
		507 };
	size_t i;

	if (res->deferred)
		abort();
	for (i = 0; i < HY_ARRAY_LEN(known) && known[i] != res->status; i++)
		;
	if (i == HY_ARRAY_LEN(known))
		abort();
	if (res->status == 404 || res->status == 405)
		return; /* the router's own page */
	struct json_tokener *tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *o = json_tokener_parse_ex(tok, res->body.data, (int)res->body.len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != res->body.len ||
	    !json_object_is_type(o, json_type_object))
		abort(); /* every answer is one JSON object */
	json_object_put(o);
	json_tokener_free(tok);
}

static void
serve(struct tracker *t, struct mem_store *st, const char tokens[2][REG_TOKEN_TEXT_SIZE],
    const uint8_t *rec, size_t len)
{
	struct http_request req;
	struct http_response res;
	char auth[sizeof("Bearer ") + REG_TOKEN_TEXT_SIZE];
	char path[FUZZ_PATH_MAX];
	size_t r = rec[0] % HY_ARRAY_LEN(routes);
	int which = rec[1] & 3;

	memset(&req, 0, sizeof(req));
	snprintf(path, sizeof(path), "%s", routes[r].path);
	req.method = routes[r].method;
	req.path = path;
	req.path_len = strlen(path);
	if (which != 2) {
		snprintf(auth, sizeof(auth), "Bearer %s",
		    which == 3 ? "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" : tokens[which]);
		req.head.headers[0].name = "Authorization";
		req.head.headers[0].name_len = strlen("Authorization");
		req.head.headers[0].value = auth;
		req.head.headers[0].value_len = strlen(auth);
		req.head.num_headers = 1;
	}
	/* an exact-size copy, so that ASan sees any read past its end */
	char *body = xmalloc(len > 2 ? len - 2 : 1);
	memcpy(body, rec + 2, len - 2);
	if (routes[r].tail) {
		size_t n = strlen(path), more = len - 2;
		if (more > sizeof(path) - n)
			more = sizeof(path) - n;
		memcpy(path + n, body, more);
		req.path_len = n + more;
	} else if (req.method == HTTP_GET) {
		req.head.query = len > 2 ? body : NULL;
		req.head.query_len = len - 2;
	} else {
		req.body = body;
		req.body_len = len - 2;
		req.content_length = len - 2;
	}
	st->fail = (rec[1] & 4) != 0;
	t->cfg.allow_loopback_peers = (rec[1] & 8) == 0;
	st->login = routes[r].login;
	http_response_init(&res);
	router_dispatch(tracker_router(t), &req, &res);
	check_answer(&res);
	http_response_fini(&res);
	free(body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_store st = { .base = { .ops = &mem_ops } };
	struct tracker_config cfg;
	char tokens[2][REG_TOKEN_TEXT_SIZE];
	char *cause = NULL;

	/* every input makes a tracker, which hashes a dummy password: at
	 * the interactive cost that was most of the time of a run */
	tracker_set_kdf_min(1);
	tracker_config_defaults(&cfg);
	cfg.ttl_ms = 60000;
	cfg.token_ttl_ms = FUZZ_TOKEN_TTL_MS;
	cfg.max_user_channels = FUZZ_MAX_USER_CHANNELS;
	cfg.max_channels = FUZZ_MAX_CHANNELS;
	cfg.page_max = FUZZ_PAGE_MAX;
	cfg.mailbox.max_messages = FUZZ_MAIL_SLOTS - 1;
	cfg.mailbox.message_max = FUZZ_MAIL_MESSAGE_MAX;
	cfg.mailbox.rate = FUZZ_MAIL_RATE;
	/* A relay and its key, so that /rendezvous signs tokens. */
	snprintf(cfg.relays[0], sizeof(cfg.relays[0]), "192.0.2.7:7400");
	cfg.nrelays = 1;
	cfg.has_relay_key = 1;
	memset(cfg.relay_key, 0x42, sizeof(cfg.relay_key));
	struct tracker *t = tracker_new(&st.base, &cfg, &cause);

	if (t == NULL)
		abort();
	registry_token_issue(
	    tracker_registry(t), "alice", hy_now_ms() + FUZZ_TOKEN_TTL_MS, tokens[0]);
	registry_token_issue(
	    tracker_registry(t), "bob", hy_now_ms() + FUZZ_TOKEN_TTL_MS, tokens[1]);
	for (size_t off = 0, n = 0; off < size && n < FUZZ_MAX_REQUESTS; n++) {
		const uint8_t *sep = memchr(data + off, FUZZ_SEP, size - off);
		size_t len = (sep != NULL ? (size_t)(sep - data) : size) - off;
		if (len >= 2)
			serve(t, &st, (const char(*)[REG_TOKEN_TEXT_SIZE])tokens, data + off, len);
		off += len + 1;
	}
	tracker_sweep(t);
	tracker_free(t);
	return 0;
}
