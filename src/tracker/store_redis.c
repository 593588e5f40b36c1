/* store_redis.c — the shared state in Redis, for several trackers: one
 * hiredis connection per worker loop through its libuv adapter, so that
 * no call blocks a loop. Multi-key updates are Lua scripts sent with
 * EVALSHA (NOSCRIPT: sent again with EVAL, which loads them); token
 * lookups and hash reads are plain commands. While a loop's connection is
 * down, operations finish at once with STORE_DOWN (the handlers answer
 * 503) and the connection is tried again with a growing backoff; each
 * change of state is logged once. Commands in flight when the connection
 * drops finish with STORE_DOWN too. */
#include <limits.h>
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
/* Words a request holds in itself; one with more (a listing's bucket of
 * names, a registration's channels) grows on the heap. */
#define REDIS_REQ_WORDS 16
/* Bytes of arguments a request holds in itself: a heartbeat's, a
 * listing's and most others' fit, so that they cost no allocation. */
#define REDIS_REQ_INLINE 256
#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 5000
#define REDIS_CONNECT_TIMEOUT_MS 2000 /* then the attempt counts as failed */
#define REDIS_SENTINEL_BACKOFF_MAX_MS 500 /* a failover is followed within it */
#define REDIS_WAIT_MS 2000 /* for a replica to acknowledge a write */
#define REDIS_REPLY_TIMEOUT_MS 5000 /* a server silent this long is dropped */
#define REDIS_WATCH_MS 1000 /* how often that is checked */
#define REDIS_SWITCH_CHANNEL "+switch-master"

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
	uint64_t attempt_ms; /* when the attempt under way began (loop time) */
	/* A server that keeps the connection but stops answering (stopped,
	 * swapping) is found by its silence. */
	uv_timer_t watch;
	unsigned inflight; /* commands sent and not answered */
	uint64_t last_progress_ms; /* the last answer, or the first send after none */
	int stalled;
	int handles; /* timers not yet closed */
	char host[NI_MAXHOST]; /* the primary */
	int port;
	/* With sentinels: the one asked where the primary is, and the one
	 * that tells of a switch (SUBSCRIBE +switch-master). */
	redisAsyncContext *ask, *sub;
	size_t next_sentinel;
};

struct store_redis {
	struct store_state base;
	char host[NI_MAXHOST]; /* numeric, resolved once at start */
	int port;
	int db;
	char where[NI_MAXHOST + 16]; /* HOST:PORT, for the log */
	int sentinel; /* the primary is whatever sentinels say */
	struct redis_sentinels sn;
	pthread_mutex_t lock;
	struct redis_conn *conns[REDIS_MAX_LOOPS];
	size_t nconns;
};

/* The requests of one call that are in flight at once, or one after
 * another (redis_req_then()): the call finishes once every one has
 * answered, with the result of the first (in the order they were made)
 * that was not STORE_DONE. */
struct redis_group {
	unsigned left; /* requests not yet answered */
	int made; /* requests made so far: the next one's index */
	int at; /* the index whose result is kept (INT_MAX: none yet) */
	enum store_result result;
	char *cause;
	int replicated; /* one of them asked for it */
};

/* One command in flight. */
struct redis_req {
	struct redis_conn *conn;
	struct store_call *c;
	int script; /* -1: a plain command */
	redis_parse_fn parse;
	struct redis_group *group; /* NULL: the call's only request */
	int index; /* in the group */
	int tag; /* the caller's, for its parser (redis_tag()) */
	int retried; /* NOSCRIPT was answered once */
	int replicated; /* answer once a replica has it */
	int nkeys; /* a script's KEYS, the arguments after the head */
	char nkeys_text[12];
	int argc;
	/* Static text (the command, a script's SHA-1 or body), the inline
	 * bytes, or allocated where owned says so. The arrays are the
	 * request's own (words_inline) up to REDIS_REQ_WORDS words. */
	const char **argv;
	size_t *argvlen;
	unsigned char *owned;
	int cap; /* words the arrays hold */
	const char *argv_inline[REDIS_REQ_WORDS];
	size_t argvlen_inline[REDIS_REQ_WORDS];
	unsigned char owned_inline[REDIS_REQ_WORDS];
	size_t used; /* of inline */
	char inline_args[REDIS_REQ_INLINE];
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
		log_info("redis %s:%d%s: connected", conn->host, conn->port,
		    conn->r->sentinel ? " (the primary, from the sentinels)" : "");
	else
		log_warn("redis %s: unreachable (%s); answering 503 and retrying",
		    conn->r->sentinel ? "primary" : conn->r->where, why);
	conn->state = st;
}

/* Either the backoff is over, or a connect took too long (a host that
 * drops packets): that attempt is abandoned and the next one waits. */
static void
retry_cb(uv_timer_t *timer)
{
	struct redis_conn *conn = timer->data;

	if (conn->ask != NULL) {
		redisAsyncContext *ask = conn->ask;
		conn->ask = NULL;
		redisAsyncFree(ask); /* its reply callback sees NULL and retries */
		return;
	}
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

/* The next attempt begins a backoff after the start of the one that
 * failed, not after its end: an attempt that hung until its timeout
 * (REDIS_CONNECT_TIMEOUT_MS, a host that drops packets, a sentinel that
 * does not answer) has waited its share already, so that attempts begin
 * at most the backoff's cap apart, as they do when refused at once. A
 * connection that was up waits the whole backoff after it drops. */
static void
conn_retry_later(struct redis_conn *conn, const char *why)
{
	uint64_t wait = conn->backoff_ms;
	uint64_t spent = uv_now(conn->loop) - conn->attempt_ms;

	if (!conn->connected)
		wait = spent >= wait ? 0 : wait - spent;
	conn->ac = NULL;
	conn->connected = 0;
	if (conn->closing)
		return; /* a stop, not an outage: nothing to log */
	conn_set_state(conn, CONN_DOWN, why);
	uv_timer_start(&conn->retry, retry_cb, wait, 0);
	conn->backoff_ms *= 2;
	uint64_t max = conn->r->sentinel ? REDIS_SENTINEL_BACKOFF_MAX_MS : REDIS_BACKOFF_MAX_MS;
	if (conn->backoff_ms > max)
		conn->backoff_ms = max;
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
	conn_retry_later(conn,
	    conn->stalled ? "no answer for 5 s"
	                  : (ac->errstr[0] ? ac->errstr : "connection closed"));
	conn->stalled = 0;
}

/* Drops a connection whose server has not answered for
 * REDIS_REPLY_TIMEOUT_MS: its calls end with 503, and it is opened
 * again. */
static void
watch_cb(uv_timer_t *timer)
{
	struct redis_conn *conn = timer->data;

	if (conn->ac == NULL || !conn->connected || conn->inflight == 0 ||
	    hy_now_ms() - conn->last_progress_ms < REDIS_REPLY_TIMEOUT_MS)
		return;
	redisAsyncContext *ac = conn->ac;
	conn->stalled = 1;
	redisAsyncFree(ac); /* answers what is in flight, then on_disconnect */
}

/* A context on loop for host:port with conn as its data; NULL with why. */
static redisAsyncContext *
context_new(struct redis_conn *conn, const char *host, int port, char *why, size_t whysz)
{
	redisAsyncContext *ac = redisAsyncConnect(host, port);

	if (ac == NULL || ac->err) {
		snprintf(why, whysz, "%s", ac != NULL ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		return NULL;
	}
	ac->data = conn;
	if (redis_uv_attach(ac, conn->loop) < 0) {
		snprintf(why, whysz, "cannot watch the socket");
		redisAsyncFree(ac);
		return NULL;
	}
	return ac;
}

static void conn_connect(struct redis_conn *conn);

/* Sentinels. */

/* A +switch-master message for our primary: the connection to the old
 * one is dropped, and the next attempt asks the sentinels again. */
static void
on_switch(redisAsyncContext *ac, void *reply, void *arg)
{
	struct redis_conn *conn = arg;
	const redisReply *r = reply;
	char name[REDIS_MASTER_NAME_MAX + 1], oldip[NI_MAXHOST], newip[NI_MAXHOST];
	int oldport, newport;

	if (r == NULL) {
		if (conn->sub == ac)
			conn->sub = NULL; /* asked for again on the next discovery */
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[2]->type != REDIS_REPLY_STRING ||
	    sscanf(r->element[2]->str, "%64s %1024s %d %1024s %d", name, oldip, &oldport, newip,
	        &newport) != 5 ||
	    strcmp(name, conn->r->sn.master) != 0)
		return;
	log_info("redis: the sentinels moved %s to %s:%d", name, newip, newport);
	conn->backoff_ms = REDIS_BACKOFF_MIN_MS;
	if (conn->ac != NULL && (strcmp(conn->host, newip) != 0 || conn->port != newport))
		redisAsyncDisconnect(conn->ac); /* on_disconnect retries */
}

static void
on_ask_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis_conn *conn = ac->data;

	(void)status;
	if (conn->ask == ac)
		conn->ask = NULL;
	if (conn->sub == ac)
		conn->sub = NULL;
}

/* The sentinel's answer: the primary's address, kept, and this sentinel
 * kept as the one to hear switches from if none is yet. */
static void
on_master_addr(redisAsyncContext *ac, void *reply, void *arg)
{
	struct redis_conn *conn = arg;
	const redisReply *r = reply;

	if (conn->ask == ac)
		conn->ask = NULL;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		if (r != NULL)
			redisAsyncDisconnect(ac);
		conn_retry_later(conn, "no sentinel names the primary");
		return;
	}
	snprintf(conn->host, sizeof(conn->host), "%s", r->element[0]->str);
	conn->port = atoi(r->element[1]->str);
	if (conn->sub == NULL && !conn->closing) {
		conn->sub = ac;
		redisAsyncCommand(ac, on_switch, conn, "SUBSCRIBE " REDIS_SWITCH_CHANNEL);
	} else {
		redisAsyncDisconnect(ac);
	}
	conn_connect(conn);
}

/* Asks the next sentinel, in turn, where the primary is. */
static void
sentinel_ask(struct redis_conn *conn)
{
	struct store_redis *r = conn->r;
	const struct redis_addr *at = &r->sn.at[conn->next_sentinel++ % r->sn.n];
	char why[128];
	redisAsyncContext *ac = context_new(conn, at->host, at->port, why, sizeof(why));

	if (ac == NULL) {
		conn_retry_later(conn, why);
		return;
	}
	redisAsyncSetDisconnectCallback(ac, on_ask_disconnect);
	conn->ask = ac;
	uv_timer_start(&conn->retry, retry_cb, REDIS_CONNECT_TIMEOUT_MS, 0);
	redisAsyncCommand(
	    ac, on_master_addr, conn, "SENTINEL get-master-addr-by-name %s", r->sn.master);
}

static void
conn_open(struct redis_conn *conn)
{
	conn->attempt_ms = uv_now(conn->loop);
	if (conn->r->sentinel)
		sentinel_ask(conn);
	else
		conn_connect(conn);
}

static void
conn_connect(struct redis_conn *conn)
{
	struct store_redis *r = conn->r;
	char why[128];
	redisAsyncContext *ac = context_new(conn, conn->host, conn->port, why, sizeof(why));

	if (ac == NULL) {
		conn_retry_later(conn, why);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	conn->ac = ac;
	uv_timer_start(&conn->retry, retry_cb, REDIS_CONNECT_TIMEOUT_MS, 0);
	if (r->db != 0)
		redisAsyncCommand(ac, NULL, NULL, "SELECT %d", r->db);
}

void
redis_attach(struct store_state *s, uv_loop_t *loop)
{
	struct store_redis *r = redis_of(s);
	struct redis_conn *conn = xcalloc(1, sizeof(*conn));

	conn->r = r;
	conn->loop = loop;
	conn->backoff_ms = REDIS_BACKOFF_MIN_MS;
	snprintf(conn->host, sizeof(conn->host), "%s", r->host);
	conn->port = r->port;
	uv_timer_init(loop, &conn->retry);
	conn->retry.data = conn;
	uv_timer_init(loop, &conn->watch);
	conn->watch.data = conn;
	uv_timer_start(&conn->watch, watch_cb, REDIS_WATCH_MS, REDIS_WATCH_MS);
	conn->handles = 2;
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
	struct redis_conn *conn = h->data;

	if (--conn->handles == 0)
		free(conn);
}

void
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
	if (conn->ask != NULL)
		redisAsyncFree(conn->ask);
	if (conn->sub != NULL)
		redisAsyncFree(conn->sub);
	uv_close((uv_handle_t *)&conn->retry, conn_closed);
	uv_close((uv_handle_t *)&conn->watch, conn_closed);
}

void
redis_close(struct store_state *s)
{
	struct store_redis *r = redis_of(s);

	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Requests. */

/* Gives back q's word arrays if they are on the heap. */
static void
req_words_free(struct redis_req *q)
{
	if (q->argv != q->argv_inline) {
		free(q->argv);
		free(q->argvlen);
		free(q->owned);
	}
}

static void
req_free(struct redis_req *q)
{
	for (int i = 0; i < q->argc; i++)
		if (q->owned[i])
			free((char *)q->argv[i]);
	req_words_free(q);
	free(q);
}

/* Sets argument i to static text. */
static void
req_static(struct redis_req *q, int i, const char *text)
{
	if (q->owned[i])
		free((char *)q->argv[i]);
	q->owned[i] = 0;
	q->argv[i] = text;
	q->argvlen[i] = strlen(text);
}

struct redis_req *
redis_req_new(struct store_call *c, int script, redis_parse_fn parse)
{
	/* Not zeroed whole: the arrays are filled as arguments come. */
	struct redis_req *q = xmalloc(sizeof(*q));

	q->conn = NULL;
	q->c = c;
	q->script = script;
	q->parse = parse;
	q->group = NULL;
	q->index = 0;
	q->tag = 0;
	q->retried = q->replicated = 0;
	q->nkeys = 0;
	q->argc = 0;
	q->used = 0;
	q->argv = q->argv_inline;
	q->argvlen = q->argvlen_inline;
	q->owned = q->owned_inline;
	q->cap = REDIS_REQ_WORDS;
	if (script >= 0) {
		/* The count of keys is written as the request leaves. */
		static const char *const head[] = { "EVALSHA", NULL, "0" };
		for (int i = 0; i < 3; i++) {
			q->owned[i] = 0;
			req_static(q, i, head[i] != NULL ? head[i] : redis_script_sha(script));
		}
		q->argc = 3;
	}
	return q;
}

static void
req_arg(struct redis_req *q, const char *s, size_t len)
{
	char *to;
	int i = q->argc;

	if (i == q->cap) {
		/* Twice the words, on the heap: what the request held moves. */
		size_t n = 2 * (size_t)q->cap;
		const char **argv = xmalloc(n * sizeof(*argv));
		size_t *argvlen = xmalloc(n * sizeof(*argvlen));
		unsigned char *owned = xmalloc(n);
		memcpy(argv, q->argv, (size_t)i * sizeof(*argv));
		memcpy(argvlen, q->argvlen, (size_t)i * sizeof(*argvlen));
		memcpy(owned, q->owned, (size_t)i);
		req_words_free(q);
		q->argv = argv;
		q->argvlen = argvlen;
		q->owned = owned;
		q->cap = (int)n;
	}
	if (len < sizeof(q->inline_args) - q->used) {
		to = q->inline_args + q->used;
		q->used += len + 1;
		q->owned[i] = 0;
	} else {
		to = xmalloc(len + 1);
		q->owned[i] = 1;
	}
	memcpy(to, s, len);
	to[len] = '\0';
	q->argv[i] = to;
	q->argvlen[i] = len;
	q->argc++;
}

void
redis_req_str(struct redis_req *q, const char *s)
{
	req_arg(q, s, strlen(s));
}

void
redis_req_bin(struct redis_req *q, const void *p, size_t len)
{
	req_arg(q, p, len);
}

void
redis_req_key(struct redis_req *q, const char *key)
{
	if (q->argc != 3 + q->nkeys)
		log_fatal(70, "redis: a key after the arguments of script %d", q->script);
	redis_req_str(q, key);
	q->nkeys++;
}

void
redis_req_u64(struct redis_req *q, uint64_t v)
{
	char text[24];

	snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
	redis_req_str(q, text);
}

static void req_send(struct redis_req *q);

void
redis_req_replicated(struct redis_req *q)
{
	q->replicated = 1;
}

static void
on_wait(redisAsyncContext *ac, void *reply, void *arg)
{
	struct store_call *c = arg;
	const redisReply *r = reply;

	(void)ac;
	if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1)
		store_call_finish(c, c->result, NULL);
	else
		store_call_finish(c, STORE_DOWN, "redis: no replica acknowledged the write");
}

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

/* Finishes c with res, once a replica has the writes where replicated
 * asks it of a store with replicas (ac: the connection they went on). */
static void
call_finish(struct store_call *c, redisAsyncContext *ac, int replicated, enum store_result res,
    const char *cause)
{
	if (!replicated || res != STORE_DONE || ac == NULL) {
		store_call_finish(c, res, cause);
		return;
	}
	/* Acknowledged only once a replica has it, so that a failover
	 * cannot lose it. */
	c->result = res;
	if (redisAsyncCommand(ac, on_wait, c, "WAIT 1 %d", REDIS_WAIT_MS) != REDIS_OK)
		store_call_finish(c, STORE_DOWN, "redis: not connected");
}

/* Ends q with res (ac: the connection its reply came on, NULL if none
 * did): the call finishes now, or once the rest of q's group has. */
static void
req_end(struct redis_req *q, redisAsyncContext *ac, enum store_result res, const char *cause)
{
	struct store_call *c = q->c;
	struct redis_group *g = q->group;
	int replicated = q->replicated && q->conn->r->sentinel;
	int index = q->index;

	req_free(q);
	if (g == NULL) {
		call_finish(c, ac, replicated, res, cause);
		return;
	}
	if (res != STORE_DONE && index < g->at) {
		g->at = index;
		g->result = res;
		free(g->cause);
		g->cause = cause != NULL ? xstrdup(cause) : NULL;
	}
	g->replicated |= replicated;
	if (--g->left > 0)
		return;
	char *why = g->cause;
	res = g->result;
	replicated = g->replicated;
	free(g);
	call_finish(c, ac, replicated, res, why);
	free(why);
}

/* The request whose reply this thread's loop is parsing: where
 * redis_req_then() joins its next step. */
static _Thread_local struct redis_req *parsing;

static void
on_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct redis_req *q = arg;
	const redisReply *r = reply;

	if (q->conn->inflight > 0)
		q->conn->inflight--;
	q->conn->last_progress_ms = hy_now_ms();
	if (r == NULL) {
		req_end(q, NULL, STORE_DOWN, "redis: connection lost");
		return;
	}
	if (r->type == REDIS_REPLY_ERROR && q->script >= 0 && !q->retried &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0) {
		/* The server lost its script cache (a restart, a failover):
		 * EVAL loads the script again. */
		req_static(q, 0, "EVAL");
		req_static(q, 1, redis_script_body(q->script));
		q->retried = 1;
		req_send(q);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		char why[256];
		snprintf(why, sizeof(why), "redis: %s", r->str);
		if (q->conn->r->sentinel && strncmp(r->str, "READONLY", 8) == 0 &&
		    q->conn->ac == ac)
			redisAsyncDisconnect(ac); /* a demoted primary: ask again */
		req_end(q, ac, reply_is_unavailable(r) ? STORE_DOWN : STORE_FAILED, why);
		return;
	}
	parsing = q;
	enum store_result res = q->parse(q->c, r);
	parsing = NULL;
	req_end(q, ac, res, NULL);
}

static void
req_send(struct redis_req *q)
{
	struct redis_conn *conn = q->conn;

	if (q->script >= 0) {
		snprintf(q->nkeys_text, sizeof(q->nkeys_text), "%d", q->nkeys);
		q->argv[2] = q->nkeys_text;
		q->argvlen[2] = strlen(q->nkeys_text);
	}
	if (conn->ac == NULL || !conn->connected ||
	    redisAsyncCommandArgv(conn->ac, on_reply, q, q->argc, q->argv, q->argvlen) !=
	        REDIS_OK) {
		req_end(q, NULL, STORE_DOWN, "redis: not connected");
		return;
	}
	if (conn->inflight++ == 0)
		conn->last_progress_ms = hy_now_ms();
}

/* Joins q to g as its next request. */
static void
group_join(struct redis_group *g, struct redis_req *q)
{
	q->group = g;
	q->index = g->made++;
	g->left++;
}

static struct redis_group *
group_new(void)
{
	struct redis_group *g = xcalloc(1, sizeof(*g));

	g->at = INT_MAX;
	g->result = STORE_DONE;
	return g;
}

/* Sends q on the call's loop's connection, or finishes the call with
 * STORE_DOWN. */
void
redis_req_start(struct store_state *s, struct redis_req *q)
{
	redis_req_start_all(s, &q, 1);
}

void
redis_req_start_all(struct store_state *s, struct redis_req **qs, size_t n)
{
	struct store_call *c = qs[0]->c;
	struct redis_conn *conn = c->loop != NULL ? conn_find(redis_of(s), c->loop) : NULL;

	if (conn == NULL || conn->ac == NULL || !conn->connected) {
		for (size_t i = 0; i < n; i++)
			req_free(qs[i]);
		store_call_finish(c, STORE_DOWN,
		    conn == NULL ? "redis: no connection on this loop" : "redis: not connected");
		return;
	}
	struct redis_group *g = n > 1 ? group_new() : NULL;
	for (size_t i = 0; i < n; i++) {
		qs[i]->conn = conn;
		if (g != NULL)
			group_join(g, qs[i]);
	}
	/* The group outlives a failure to send one: req_end() counts it. */
	for (size_t i = 0; i < n; i++)
		req_send(qs[i]);
}

void
redis_req_tag(struct redis_req *q, int tag)
{
	q->tag = tag;
}

int
redis_tag(void)
{
	return parsing != NULL ? parsing->tag : 0;
}

void
redis_req_then(struct redis_req *q)
{
	struct redis_req *now = parsing;

	if (now->group == NULL) {
		now->group = group_new();
		group_join(now->group, now); /* the one answering, ended after its parser */
	}
	q->conn = now->conn;
	group_join(now->group, q);
	req_send(q);
}

struct store_state *
store_state_redis_new(const char *url, char **cause)
{
	struct store_redis *r = xcalloc(1, sizeof(*r));

	struct redis_addr a;

	if (strncmp(url, REDIS_SENTINEL_PREFIX, strlen(REDIS_SENTINEL_PREFIX)) == 0) {
		if (redis_sentinel_parse(url, &r->sn, cause) < 0) {
			free(r);
			return NULL;
		}
		r->sentinel = 1;
		snprintf(r->where, sizeof(r->where), "%s", r->sn.master);
	} else {
		if (redis_addr_parse(url, &a, cause) < 0) {
			free(r);
			return NULL;
		}
		snprintf(r->host, sizeof(r->host), "%s", a.host);
		r->port = a.port;
		r->db = a.db;
		snprintf(r->where, sizeof(r->where), "%s:%d", r->host, r->port);
	}
	r->base.ops = &redis_state_ops;
	pthread_mutex_init(&r->lock, NULL);
	(void)redis_script_sha(0); /* computed before the loops start */
	return &r->base;
}
