/* store_redis.c — the shared state in Redis, for several trackers: one
 * hiredis connection per worker loop through its libuv adapter, so that
 * no call blocks a loop. Multi-key updates are Lua scripts sent with
 * EVALSHA (NOSCRIPT: sent again with EVAL, which loads them); token
 * lookups and hash reads are plain commands. While a loop's connection is
 * down, operations finish at once with STORE_DOWN (the handlers answer
 * 503) and the connection is tried again with a growing backoff; each
 * change of state is logged once. Commands in flight when the connection
 * drops finish with STORE_DOWN too. */
#include <netdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "hychat/log.h"
#include "hychat/store.h"
#include "hychat/util.h"
#include "redis_uv.h"
#include "store_redis.h"
#include "store_redis_lua.h"

#define REDIS_MAX_LOOPS 64 /* worker loops, at most (HTTP_MAX_WORKERS) */
#define REDIS_MAX_ARGS (8 + STORE_CHANNELS_PER_CALL) /* the longest script call */
#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 5000
#define REDIS_CONNECT_TIMEOUT_MS 2000 /* then the attempt counts as failed */
#define REDIS_TOKEN_ID_BYTES 16 /* the hash of a token that names its key */
#define REDIS_TOKEN_ID_TEXT 32 /* its base64url, NUL included */
#define REDIS_KEY_MAX 128

enum conn_state {
	CONN_NEW,
	CONN_UP,
	CONN_DOWN
};

struct redis_conn {
	struct store_redis *r;
	uv_loop_t *loop;
	redisAsyncContext *ac; /* NULL while down */
	enum conn_state state;
	int connected; /* ac has answered the connect */
	int closing;
	uv_timer_t retry;
	uint64_t backoff_ms;
};

struct store_redis {
	struct store_state base;
	char host[NI_MAXHOST]; /* numeric, resolved once at start */
	int port;
	int db;
	char where[NI_MAXHOST + 16]; /* HOST:PORT, for the log */
	pthread_mutex_t lock;
	struct redis_conn *conns[REDIS_MAX_LOOPS];
	size_t nconns;
};

/* One command in flight. */
struct redis_req {
	struct redis_conn *conn;
	struct store_call *c;
	int script; /* -1: a plain command */
	void (*parse)(struct store_call *c, const redisReply *r);
	int retried; /* NOSCRIPT was answered once */
	int argc;
	char *argv[REDIS_MAX_ARGS + 3];
	size_t argvlen[REDIS_MAX_ARGS + 3];
};

static struct store_redis *
redis_of(struct store_state *s)
{
	return (struct store_redis *)s;
}

/* Connections. */

static void conn_open(struct redis_conn *conn);
static void conn_retry_later(struct redis_conn *conn, const char *why);

static void
conn_set_state(struct redis_conn *conn, enum conn_state st, const char *why)
{
	if (conn->state == st)
		return;
	if (st == CONN_UP)
		log_info("redis %s: connected", conn->r->where);
	else
		log_warn(
		    "redis %s: unreachable (%s); answering 503 and retrying", conn->r->where, why);
	conn->state = st;
}

/* Either the backoff is over, or a connect took too long (a host that
 * drops packets): that attempt is abandoned and the next one waits. */
static void
retry_cb(uv_timer_t *timer)
{
	struct redis_conn *conn = timer->data;

	if (conn->ac == NULL) {
		conn_open(conn);
		return;
	}
	if (!conn->connected) {
		redisAsyncContext *ac = conn->ac;
		conn->ac = NULL;
		redisAsyncFree(ac); /* no disconnect callback: it never connected */
		conn_retry_later(conn, "connect timed out");
	}
}

static void
conn_retry_later(struct redis_conn *conn, const char *why)
{
	conn->ac = NULL;
	conn->connected = 0;
	if (conn->closing)
		return; /* a stop, not an outage: nothing to log */
	conn_set_state(conn, CONN_DOWN, why);
	uv_timer_start(&conn->retry, retry_cb, conn->backoff_ms, 0);
	conn->backoff_ms *= 2;
	if (conn->backoff_ms > REDIS_BACKOFF_MAX_MS)
		conn->backoff_ms = REDIS_BACKOFF_MAX_MS;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_conn *conn = ac->data;

	if (status != REDIS_OK) {
		/* hiredis frees ac after this callback */
		conn_retry_later(conn, ac->errstr[0] ? ac->errstr : "cannot connect");
		return;
	}
	conn->connected = 1;
	conn->backoff_ms = REDIS_BACKOFF_MIN_MS;
	uv_timer_stop(&conn->retry);
	conn_set_state(conn, CONN_UP, NULL);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis_conn *conn = ac->data;

	(void)status;
	conn_retry_later(conn, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void
conn_open(struct redis_conn *conn)
{
	struct store_redis *r = conn->r;
	redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);

	if (ac == NULL) {
		conn_retry_later(conn, "out of memory");
		return;
	}
	if (ac->err) {
		char why[128];
		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		conn_retry_later(conn, why);
		return;
	}
	ac->data = conn;
	if (redis_uv_attach(ac, conn->loop) < 0) {
		redisAsyncFree(ac);
		conn_retry_later(conn, "cannot watch the socket");
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	conn->ac = ac;
	uv_timer_start(&conn->retry, retry_cb, REDIS_CONNECT_TIMEOUT_MS, 0);
	if (r->db != 0)
		redisAsyncCommand(ac, NULL, NULL, "SELECT %d", r->db);
}

static void
redis_attach(struct store_state *s, uv_loop_t *loop)
{
	struct store_redis *r = redis_of(s);
	struct redis_conn *conn = xcalloc(1, sizeof(*conn));

	conn->r = r;
	conn->loop = loop;
	conn->backoff_ms = REDIS_BACKOFF_MIN_MS;
	uv_timer_init(loop, &conn->retry);
	conn->retry.data = conn;
	pthread_mutex_lock(&r->lock);
	if (r->nconns < REDIS_MAX_LOOPS)
		r->conns[r->nconns++] = conn;
	pthread_mutex_unlock(&r->lock);
	conn_open(conn);
}

static struct redis_conn *
conn_find(struct store_redis *r, uv_loop_t *loop)
{
	struct redis_conn *conn = NULL;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->nconns && conn == NULL; i++)
		if (r->conns[i]->loop == loop)
			conn = r->conns[i];
	pthread_mutex_unlock(&r->lock);
	return conn;
}

static void
conn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
redis_detach(struct store_state *s, uv_loop_t *loop)
{
	struct store_redis *r = redis_of(s);
	struct redis_conn *conn = conn_find(r, loop);

	if (conn == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->nconns; i++)
		if (r->conns[i] == conn)
			r->conns[i] = r->conns[--r->nconns];
	pthread_mutex_unlock(&r->lock);
	conn->closing = 1;
	uv_timer_stop(&conn->retry);
	if (conn->ac != NULL)
		redisAsyncFree(conn->ac); /* calls on_disconnect when it was up */
	uv_close((uv_handle_t *)&conn->retry, conn_closed);
}

static void
redis_close(struct store_state *s)
{
	struct store_redis *r = redis_of(s);

	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Requests. */

static void
req_free(struct redis_req *q)
{
	for (int i = 0; i < q->argc; i++)
		free(q->argv[i]);
	free(q);
}

static struct redis_req *
req_new(struct store_call *c, int script, void (*parse)(struct store_call *c, const redisReply *r))
{
	struct redis_req *q = xcalloc(1, sizeof(*q));

	q->c = c;
	q->script = script;
	q->parse = parse;
	if (script >= 0) {
		q->argv[0] = xstrdup("EVALSHA");
		q->argv[1] = xstrdup(redis_script_sha(script));
		q->argv[2] = xstrdup("0");
		q->argc = 3;
		for (int i = 0; i < 3; i++)
			q->argvlen[i] = strlen(q->argv[i]);
	}
	return q;
}

static void
req_arg(struct redis_req *q, const char *s, size_t len)
{
	if (q->argc >= (int)HY_ARRAY_LEN(q->argv))
		return;
	q->argv[q->argc] = xmalloc(len + 1);
	memcpy(q->argv[q->argc], s, len);
	q->argv[q->argc][len] = '\0';
	q->argvlen[q->argc++] = len;
}

static void
req_str(struct redis_req *q, const char *s)
{
	req_arg(q, s, strlen(s));
}

static void
req_u64(struct redis_req *q, uint64_t v)
{
	char text[24];

	snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
	req_str(q, text);
}

static void req_send(struct redis_req *q);

/* True if an error reply means the server cannot serve now (a replica,
 * loading, a primary cut off from its replicas), not that the command
 * was wrong. */
static int
reply_is_unavailable(const redisReply *r)
{
	static const char *const prefixes[] = { "READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS",
		"CLUSTERDOWN", "TRYAGAIN" };

	for (size_t i = 0; i < HY_ARRAY_LEN(prefixes); i++)
		if (strncmp(r->str, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct redis_req *q = arg;
	const redisReply *r = reply;
	struct store_call *c = q->c;

	(void)ac;
	if (r == NULL) {
		req_free(q);
		store_call_finish(c, STORE_DOWN, "redis: connection lost");
		return;
	}
	if (r->type == REDIS_REPLY_ERROR && q->script >= 0 && !q->retried &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0) {
		/* The server lost its script cache (a restart, a failover):
		 * EVAL loads the script again. */
		free(q->argv[0]);
		free(q->argv[1]);
		q->argv[0] = xstrdup("EVAL");
		q->argv[1] = xstrdup(redis_script_body(q->script));
		q->argvlen[0] = strlen(q->argv[0]);
		q->argvlen[1] = strlen(q->argv[1]);
		q->retried = 1;
		req_send(q);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		char why[256];
		snprintf(why, sizeof(why), "redis: %s", r->str);
		req_free(q);
		store_call_finish(c, reply_is_unavailable(r) ? STORE_DOWN : STORE_FAILED, why);
		return;
	}
	void (*parse)(struct store_call *, const redisReply *) = q->parse;
	req_free(q);
	parse(c, r); /* finishes the call */
}

static void
req_send(struct redis_req *q)
{
	struct redis_conn *conn = q->conn;

	if (conn->ac == NULL || !conn->connected ||
	    redisAsyncCommandArgv(
	        conn->ac, on_reply, q, q->argc, (const char **)q->argv, q->argvlen) != REDIS_OK) {
		struct store_call *c = q->c;
		req_free(q);
		store_call_finish(c, STORE_DOWN, "redis: not connected");
	}
}

/* Sends q on the call's loop's connection, or finishes the call with
 * STORE_DOWN. */
static void
req_start(struct store_state *s, struct redis_req *q)
{
	q->conn = q->c->loop != NULL ? conn_find(redis_of(s), q->c->loop) : NULL;
	if (q->conn == NULL) {
		struct store_call *c = q->c;
		req_free(q);
		store_call_finish(c, STORE_DOWN, "redis: no connection on this loop");
		return;
	}
	req_send(q);
}

/* Replies. */

static long long
reply_int(const redisReply *r)
{
	if (r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

static const redisReply *
reply_at(const redisReply *r, size_t i)
{
	return r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

static void
reply_str(const redisReply *r, char *out, size_t outsz)
{
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		snprintf(out, outsz, "%.*s", (int)r->len, r->str);
	else if (outsz > 0)
		out[0] = '\0';
}

/* "IP PORT KEY" into p. */
static void
peer_details(const redisReply *r, struct store_peer *p)
{
	char text[REG_IP_MAX + REG_PUBKEY_TEXT_SIZE + 16], *save = NULL;

	reply_str(r, text, sizeof(text));
	const char *ip = strtok_r(text, " ", &save);
	const char *port = strtok_r(NULL, " ", &save);
	const char *key = strtok_r(NULL, " ", &save);
	snprintf(p->ip, sizeof(p->ip), "%s", ip != NULL ? ip : "");
	p->port = port != NULL ? (unsigned)strtoul(port, NULL, 10) : 0;
	snprintf(p->pubkey, sizeof(p->pubkey), "%s", key != NULL ? key : "");
}

static void
finish_flag(struct store_call *c, const redisReply *r, enum store_result if_zero)
{
	store_call_finish(c, reply_int(r) != 0 ? STORE_DONE : if_zero, NULL);
}

/* Accounts. */

static void
parse_added(struct store_call *c, const redisReply *r)
{
	finish_flag(c, r, STORE_TAKEN);
}

static void
redis_account_add(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = req_new(c, REDIS_ACCOUNT_ADD, parse_added);

	req_str(q, c->user);
	req_str(q, c->hash);
	req_start(s, q);
}

static void
parse_hash(struct store_call *c, const redisReply *r)
{
	if (r->type != REDIS_REPLY_STRING || r->len >= sizeof(c->hash)) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	memcpy(c->hash, r->str, r->len);
	c->hash[r->len] = '\0';
	store_call_finish(c, STORE_DONE, NULL);
}

static void
user_key(char *out, size_t outsz, const char *user)
{
	snprintf(out, outsz, "hy:u:{%s}", user);
}

static void
redis_account_hash(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = req_new(c, -1, parse_hash);
	char key[REDIS_KEY_MAX];

	user_key(key, sizeof(key), c->user);
	req_str(q, "HGET");
	req_str(q, key);
	req_str(q, "h");
	req_start(s, q);
}

/* Tokens: Redis holds a hash of each token, never the token. */

static void
token_id(const char *token, size_t len, char out[REDIS_TOKEN_ID_TEXT])
{
	unsigned char h[REDIS_TOKEN_ID_BYTES];

	crypto_generichash(h, sizeof(h), (const unsigned char *)token, len, NULL, 0);
	sodium_bin2base64(
	    out, REDIS_TOKEN_ID_TEXT, h, sizeof(h), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* True if the text could be a token at all (spares Redis the rest). */
static int
token_plausible(const struct store_call *c)
{
	return c->token_len == REG_TOKEN_TEXT_SIZE - 1;
}

static void
parse_issued(struct store_call *c, const redisReply *r)
{
	(void)r;
	store_call_finish(c, STORE_DONE, NULL);
}

static void
redis_token_issue(struct store_state *s, struct store_call *c)
{
	unsigned char raw[REG_TOKEN_BYTES];
	char id[REDIS_TOKEN_ID_TEXT];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(
	    c->token, sizeof(c->token), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	token_id(c->token, strlen(c->token), id);
	struct redis_req *q = req_new(c, REDIS_TOKEN_ISSUE, parse_issued);
	req_str(q, c->user);
	req_str(q, id);
	req_u64(q, c->ttl_ms);
	req_u64(q, REG_MAX_TOKENS);
	req_start(s, q);
}

static void
parse_token_user(struct store_call *c, const redisReply *r)
{
	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > REG_NAME_MAX) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	memcpy(c->user, r->str, r->len);
	c->user[r->len] = '\0';
	store_call_finish(c, STORE_DONE, NULL);
}

static void
redis_token_user(struct store_state *s, struct store_call *c)
{
	char id[REDIS_TOKEN_ID_TEXT], key[REDIS_KEY_MAX];

	if (!token_plausible(c)) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	token_id(c->token_in, c->token_len, id);
	snprintf(key, sizeof(key), "hy:t:%s", id);
	struct redis_req *q = req_new(c, -1, parse_token_user);
	req_str(q, "GET");
	req_str(q, key);
	req_start(s, q);
}

static void
parse_revoked(struct store_call *c, const redisReply *r)
{
	finish_flag(c, r, STORE_MISSING);
}

static void
redis_token_revoke(struct store_state *s, struct store_call *c)
{
	char id[REDIS_TOKEN_ID_TEXT];

	if (!token_plausible(c)) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	token_id(c->token_in, c->token_len, id);
	struct redis_req *q = req_new(c, REDIS_TOKEN_REVOKE, parse_revoked);
	req_str(q, id);
	req_start(s, q);
}

/* Peers. */

static void
parse_submitted(struct store_call *c, const redisReply *r)
{
	const redisReply *refused = reply_at(r, 3);

	c->peer_id = (uint32_t)reply_int(reply_at(r, 0));
	c->total = (uint64_t)reply_int(reply_at(r, 1));
	c->cap = (enum store_cap)reply_int(reply_at(r, 2));
	for (size_t i = 0; refused != NULL && i < refused->elements; i++) {
		long long k = reply_int(refused->element[i]);
		if (k >= 0 && (size_t)k < c->nchannels)
			c->refused[k] = 1;
	}
	store_call_finish(c, STORE_DONE, NULL);
}

static void
redis_peer_submit(struct store_state *s, struct store_call *c)
{
	char key[REG_PUBKEY_TEXT_SIZE] = "";

	if (c->pubkey_len > 0)
		sodium_bin2base64(
		    key, sizeof(key), c->pubkey, c->pubkey_len, sodium_base64_VARIANT_ORIGINAL);
	struct redis_req *q = req_new(c, REDIS_PEER_SUBMIT, parse_submitted);
	req_str(q, c->user);
	req_str(q, c->ip);
	req_u64(q, c->port);
	req_str(q, key);
	req_u64(q, c->ttl_ms);
	req_u64(q, c->max_user_channels);
	req_u64(q, c->max_channels);
	for (size_t i = 0; i < c->nchannels; i++)
		req_str(q, c->channels[i]);
	req_start(s, q);
}

static void
parse_renewed(struct store_call *c, const redisReply *r)
{
	finish_flag(c, r, STORE_MISSING);
}

static void
redis_peer_renew(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = req_new(c, REDIS_PEER_RENEW, parse_renewed);

	req_str(q, c->user);
	req_u64(q, c->ttl_ms);
	req_start(s, q);
}

static void
parse_list(struct store_call *c, const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	const redisReply *out = reply_at(r, 1);
	size_t n = out != NULL ? out->elements / 2 : 0;
	c->more = reply_int(reply_at(r, 0)) != 0;
	c->peers = xcalloc(n > 0 ? n : 1, sizeof(*c->peers));
	c->n = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_peer *p = &c->peers[c->n];
		reply_str(out->element[2 * i], p->name, sizeof(p->name));
		peer_details(out->element[2 * i + 1], p);
		if (p->name[0] != '\0' && p->ip[0] != '\0')
			c->n++;
	}
	store_call_finish(c, STORE_DONE, NULL);
}

static void
redis_peer_list(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = req_new(c, REDIS_PEER_LIST, parse_list);

	req_str(q, c->channel);
	req_str(q, c->after);
	req_u64(q, c->limit);
	req_start(s, q);
}

static void
parse_info(struct store_call *c, const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER) {
		store_call_finish(c, STORE_MISSING, NULL);
		return;
	}
	c->online = reply_int(reply_at(r, 0)) != 0;
	if (c->online)
		peer_details(reply_at(r, 1), &c->info);
	reply_str(reply_at(r, 2), c->info.pubkey, sizeof(c->info.pubkey));
	c->member = reply_int(reply_at(r, 3)) != 0;
	store_call_finish(c, STORE_DONE, NULL);
}

static void
redis_peer_info(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = req_new(c, REDIS_PEER_INFO, parse_info);

	req_str(q, c->user);
	req_str(q, c->channel);
	req_start(s, q);
}

/* Channels. */

static void
parse_joined(struct store_call *c, const redisReply *r)
{
	long long first = reply_int(reply_at(r, 0));
	const redisReply *names = reply_at(r, 1);

	if (first < 0) {
		c->cap = (enum store_cap) - first;
		store_call_finish(c, STORE_CAPPED, NULL);
		return;
	}
	c->total = (uint64_t)first;
	size_t n = names != NULL ? names->elements : 0;
	c->names = xcalloc(n > 0 ? n : 1, sizeof(*c->names));
	for (size_t i = 0; i < n; i++)
		reply_str(names->element[i], c->names[c->n++], sizeof(c->names[0]));
	store_call_finish(c, STORE_DONE, NULL);
}

static void
redis_channel_join(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = req_new(c, REDIS_CHANNEL_JOIN, parse_joined);

	req_str(q, c->user);
	req_str(q, c->channel);
	req_u64(q, c->max_user_channels);
	req_u64(q, c->max_channels);
	req_u64(q, c->limit);
	req_start(s, q);
}

static void
parse_left(struct store_call *c, const redisReply *r)
{
	finish_flag(c, r, STORE_MISSING);
}

static void
redis_channel_leave(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = req_new(c, REDIS_CHANNEL_LEAVE, parse_left);

	req_str(q, c->user);
	req_str(q, c->channel);
	req_start(s, q);
}

static void
parse_channels(struct store_call *c, const redisReply *r)
{
	const redisReply *out = reply_at(r, 2);
	size_t n = out != NULL ? out->elements / 2 : 0;

	c->channel_count = (uint64_t)reply_int(reply_at(r, 0));
	c->more = reply_int(reply_at(r, 1)) != 0;
	c->chans = xcalloc(n > 0 ? n : 1, sizeof(*c->chans));
	for (size_t i = 0; i < n; i++) {
		reply_str(out->element[2 * i], c->chans[i].name, sizeof(c->chans[i].name));
		c->chans[i].members = (size_t)reply_int(out->element[2 * i + 1]);
	}
	c->n = n;
	store_call_finish(c, STORE_DONE, NULL);
}

static void
redis_channel_list(struct store_state *s, struct store_call *c)
{
	struct redis_req *q = req_new(c, REDIS_CHANNEL_LIST, parse_channels);

	req_str(q, c->after);
	req_u64(q, c->limit);
	req_start(s, q);
}

static void
parse_stats(struct store_call *c, const redisReply *r)
{
	c->total = (uint64_t)reply_int(reply_at(r, 0));
	c->channel_count = (uint64_t)reply_int(reply_at(r, 1));
	c->accounts = (uint64_t)reply_int(reply_at(r, 2));
	c->sessions = (uint64_t)reply_int(reply_at(r, 3));
	store_call_finish(c, STORE_DONE, NULL);
}

static void
redis_stats(struct store_state *s, struct store_call *c)
{
	req_start(s, req_new(c, REDIS_STATS, parse_stats));
}

static const struct store_state_ops redis_ops = {
	.attach = redis_attach,
	.detach = redis_detach,
	.close = redis_close,
	.sweep = NULL, /* readers trim */
	.account_add = redis_account_add,
	.account_hash = redis_account_hash,
	.token_issue = redis_token_issue,
	.token_user = redis_token_user,
	.token_revoke = redis_token_revoke,
	.peer_submit = redis_peer_submit,
	.peer_renew = redis_peer_renew,
	.peer_list = redis_peer_list,
	.peer_info = redis_peer_info,
	.channel_join = redis_channel_join,
	.channel_leave = redis_channel_leave,
	.channel_list = redis_channel_list,
	.stats = redis_stats,
};

struct store_state *
store_state_redis_new(const char *url, char **cause)
{
	struct store_redis *r = xcalloc(1, sizeof(*r));

	struct redis_addr a;

	if (redis_addr_parse(url, &a, cause) < 0) {
		free(r);
		return NULL;
	}
	snprintf(r->host, sizeof(r->host), "%s", a.host);
	r->port = a.port;
	r->db = a.db;
	snprintf(r->where, sizeof(r->where), "%s:%d", r->host, r->port);
	r->base.ops = &redis_ops;
	pthread_mutex_init(&r->lock, NULL);
	(void)redis_script_sha(0); /* computed before the loops start */
	return &r->base;
}
