/* proxy.c — requests in from clients, out to backends, answers back.
 *
 * An exchange is one client request on its way through: it picks a
 * backend, takes an idle connection from the worker's pool or dials one,
 * writes the rewritten head, streams the body (buffering only until the
 * backend connection is up, and pausing the client past
 * PROXY_BUFFER_HIGH), then streams the answer back, pausing the backend
 * while the client's write queue is full. A request small enough to have
 * been kept whole can be sent again: to the next backend when a dial
 * fails, or on a fresh connection when a pooled one turns out closed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "hychat/proxy.h"
#include "hychat/proxy_tls.h"

struct be_state {
	uint64_t down_until;
	unsigned fails;
	unsigned active;
};

/* A configuration and the health of its backends, shared by workers. */
struct conf_ref {
	struct proxy_conf *c;
	atomic_uint refs;
	struct be_state **health; /* [vhost][backend] */
	atomic_uint *rr; /* [vhost] */
	struct http_tls **server_tls; /* [vhost]: its certificate, or NULL */
	struct http_tls **client_tls; /* [vhost]: to its https backends, or NULL */
};

struct proxy {
	pthread_mutex_t lock; /* the current conf_ref, every be_state, workers */
	struct conf_ref *cur;
	struct worker *workers[HTTP_MAX_WORKERS];
	size_t nworkers;
	int access_log;
	struct proxy_tls *tls; /* every TLS context, for the process's life */
};

struct upstream;

struct worker {
	struct proxy *p;
	uv_loop_t *loop;
	struct upstream *idle; /* the pool, every backend */
	size_t nidle;
	/* TLS backends read ciphertext here, straight into their BIO */
	char tls_scratch[PROXY_TLS_READ_CHUNK];
};

enum up_state {
	UP_CONNECTING,
	UP_HEAD, /* request sent (or being sent), reading the answer's head */
	UP_BODY, /* streaming the answer's body */
	UP_TUNNEL, /* after 101 Switching Protocols */
	UP_IDLE, /* in the pool */
};

struct exchange;

struct upstream {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_timer_t timer;
	struct worker *w;
	struct exchange *ex;
	struct upstream *next; /* in the pool */
	char be_name[PROXY_MAX_NAME + 8];
	char be_host[PROXY_MAX_NAME + 1]; /* the name its certificate must hold */
	struct http_tls *tls_ctx; /* https: the client context, else NULL */
	struct http_tls_conn *tls;
	struct buf tls_out; /* ciphertext on its way to the socket */
	int tls_ready; /* handshake done */
	enum up_state state;
	int open_handles;
	int closing;
	int reused;
	int reading;
	int connected;
	int got_bytes;
	size_t writing; /* bytes queued in uv_write */
	struct buf in;
	size_t last_len;
	int keepalive;
	int chunked;
	int close_delimited;
	uint64_t body_left;
	struct http_chunked dec;
};

struct write_req {
	uv_write_t req;
	struct upstream *up;
	size_t len;
	char data[];
};

struct exchange {
	struct http_conn *c;
	struct worker *w;
	struct conf_ref *cr;
	size_t vh;
	int be;
	unsigned tries;
	struct upstream *up;
	struct buf head; /* the rewritten request head */
	struct buf pending; /* body bytes waiting for the connection */
	struct buf replay; /* head + body as sent, while small enough to resend */
	int can_replay;
	int req_chunked;
	int body_done;
	int upgrade;
	int head_only;
	int resp_started;
	int status;
	uint64_t start_ms;
	char method[16];
	char target[256];
};

static void exchange_dial(struct exchange *ex);
static void exchange_fail(struct exchange *ex, int status);
static void up_close(struct upstream *up);
static void up_read_start(struct upstream *up);

/* Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy sets itself. */
static const char *const hop_headers[] = {
	"connection",
	"keep-alive",
	"proxy-connection",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
	"content-length",
	"expect",
	"proxy-authorization",
};

static int
is_hop(const char *name, size_t len, const char *conn_value, size_t conn_len)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(hop_headers); i++) {
		if (hy_strieq(name, len, hop_headers[i]))
			return 1;
	}
	/* and whatever the Connection header names */
	if (conn_value != NULL && len < 64) {
		char tok[64];
		memcpy(tok, name, len);
		tok[len] = '\0';
		return http_header_has_token(conn_value, conn_len, tok);
	}
	return 0;
}

static struct conf_ref *
conf_ref_new(struct proxy_conf *c)
{
	struct conf_ref *r = xcalloc(1, sizeof(*r));
	r->c = c;
	atomic_init(&r->refs, 1);
	r->health = xcalloc(c->nvhosts, sizeof(*r->health));
	r->rr = xcalloc(c->nvhosts, sizeof(*r->rr));
	for (size_t i = 0; i < c->nvhosts; i++)
		r->health[i] = xcalloc(c->vhosts[i].nbackends, sizeof(**r->health));
	r->server_tls = xcalloc(c->nvhosts, sizeof(*r->server_tls));
	r->client_tls = xcalloc(c->nvhosts, sizeof(*r->client_tls));
	return r;
}

static void
conf_ref_put(struct conf_ref *r)
{
	if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	for (size_t i = 0; i < r->c->nvhosts; i++)
		free(r->health[i]);
	free(r->health);
	free(r->rr);
	free(r->server_tls);
	free(r->client_tls);
	proxy_conf_free(r->c);
	free(r);
}

/* The SNI callback, on any worker: the certificate of the host block
 * that name picks in the configuration now in force. The contexts outlive
 * every configuration (proxy_tls.h), so the pointer may leave the lock. */
static struct http_tls *
proxy_sni_pick(const char *name, void *arg)
{
	struct proxy *p = arg;
	struct http_tls *t = NULL;

	pthread_mutex_lock(&p->lock);
	const struct proxy_conf *c = p->cur->c;
	const struct proxy_vhost *v = proxy_conf_match_sni(c, name);
	if (v != NULL)
		t = p->cur->server_tls[v - c->vhosts];
	pthread_mutex_unlock(&p->lock);
	return t;
}

/* A configuration with its TLS contexts; NULL with err set. */
static struct conf_ref *
conf_ref_load(struct proxy *p, struct proxy_conf *conf, int reload, char *err, size_t errsz)
{
	struct conf_ref *r = conf_ref_new(conf);

	if (proxy_tls_resolve(p->tls, conf, reload, r->server_tls, r->client_tls, err, errsz) < 0) {
		conf_ref_put(r);
		return NULL;
	}
	return r;
}

struct proxy *
proxy_new(struct proxy_conf *conf, int access_log, char *err, size_t errsz)
{
	struct proxy *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->tls = proxy_tls_new(proxy_sni_pick, p);
	p->access_log = access_log;
	p->cur = conf_ref_load(p, conf, 0, err, errsz);
	if (p->cur == NULL) {
		proxy_free(p);
		return NULL;
	}
	return p;
}

struct http_tls *
proxy_listener_tls(struct proxy *p)
{
	return proxy_sni_pick(NULL, p);
}

void
proxy_free(struct proxy *p)
{
	if (p == NULL)
		return;
	conf_ref_put(p->cur);
	for (size_t i = 0; i < p->nworkers; i++)
		free(p->workers[i]);
	proxy_tls_free(p->tls);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int
proxy_reload(struct proxy *p, struct proxy_conf *conf, char *err, size_t errsz)
{
	struct conf_ref *r = conf_ref_load(p, conf, 1, err, errsz), *old;

	if (r == NULL)
		return -1;
	pthread_mutex_lock(&p->lock);
	old = p->cur;
	p->cur = r;
	pthread_mutex_unlock(&p->lock);
	conf_ref_put(old);
	return 0;
}

void
proxy_worker_init(struct proxy *p, uv_loop_t *loop)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	w->p = p;
	w->loop = loop;
	loop->data = w;
	pthread_mutex_lock(&p->lock);
	if (p->nworkers < HTTP_MAX_WORKERS)
		p->workers[p->nworkers++] = w;
	pthread_mutex_unlock(&p->lock);
}

void
proxy_worker_fini(uv_loop_t *loop)
{
	struct worker *w = loop->data;

	while (w->idle != NULL) {
		struct upstream *up = w->idle;
		w->idle = up->next;
		up->next = NULL;
		up_close(up);
	}
	/* w stays until proxy_free(): connections closing after this still
	 * finish their exchanges through it */
}

/* Backend choice and health, under the proxy's lock. */

static int
pick_backend(struct exchange *ex)
{
	const struct proxy_vhost *v = &ex->cr->c->vhosts[ex->vh];
	struct be_state *h = ex->cr->health[ex->vh];
	uint64_t now = uv_now(ex->w->loop);
	int best = -1;
	size_t n = v->nbackends;

	pthread_mutex_lock(&ex->w->p->lock);
	for (int pass = 0; pass < 2 && best < 0; pass++) {
		/* pass 0 skips backends marked down; pass 1 tries them anyway */
		size_t start = v->policy == PROXY_RANDOM
		    ? (size_t)rand() % n
		    : atomic_fetch_add(&ex->cr->rr[ex->vh], 1) % n;
		for (size_t k = 0; k < n; k++) {
			size_t i = (start + k) % n;
			if (ex->tries & (1u << (i % 32)))
				continue;
			if (pass == 0 && h[i].down_until > now)
				continue;
			if (v->policy == PROXY_LEAST_CONN) {
				if (best < 0 || h[i].active < h[best].active)
					best = (int)i;
			} else {
				best = (int)i;
				break;
			}
		}
	}
	if (best >= 0) {
		h[best].active++;
		ex->tries |= 1u << (best % 32);
	}
	pthread_mutex_unlock(&ex->w->p->lock);
	return best;
}

static void
backend_done(struct exchange *ex, int failed)
{
	const struct proxy_vhost *v = &ex->cr->c->vhosts[ex->vh];
	struct be_state *h;

	if (ex->be < 0)
		return;
	h = &ex->cr->health[ex->vh][ex->be];
	pthread_mutex_lock(&ex->w->p->lock);
	if (h->active > 0)
		h->active--;
	if (failed) {
		if (++h->fails >= v->max_fails) {
			h->down_until = uv_now(ex->w->loop) + v->fail_timeout_ms;
			h->fails = 0;
			log_warn("backend %s marked down for %llums", v->backends[ex->be].name,
			    (unsigned long long)v->fail_timeout_ms);
		}
	} else {
		h->fails = 0;
	}
	pthread_mutex_unlock(&ex->w->p->lock);
	ex->be = -1;
}

/* Upstream connections. */

static void
up_free_cb(uv_handle_t *h)
{
	struct upstream *up = h->data;

	if (--up->open_handles > 0)
		return;
	http_tls_conn_free(up->tls);
	buf_fini(&up->tls_out);
	buf_fini(&up->in);
	free(up);
}

static void
up_close(struct upstream *up)
{
	if (up->closing)
		return;
	up->closing = 1;
	if (up->ex != NULL && up->ex->up == up)
		up->ex->up = NULL;
	up->ex = NULL;
	uv_close((uv_handle_t *)&up->timer, up_free_cb);
	uv_close((uv_handle_t *)&up->tcp, up_free_cb);
}

static struct upstream *
up_new(struct worker *w, const struct proxy_backend *be, struct http_tls *tls_ctx)
{
	struct upstream *up = xcalloc(1, sizeof(*up));
	up->w = w;
	snprintf(up->be_name, sizeof(up->be_name), "%s", be->name);
	snprintf(up->be_host, sizeof(up->be_host), "%s", be->host);
	up->tls_ctx = tls_ctx;
	buf_init(&up->tls_out);
	uv_tcp_init(w->loop, &up->tcp);
	uv_timer_init(w->loop, &up->timer);
	up->tcp.data = up->timer.data = up;
	up->open_handles = 2;
	buf_init(&up->in);
	return up;
}

static void
pool_remove(struct worker *w, struct upstream *up)
{
	for (struct upstream **pp = &w->idle; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == up) {
			*pp = up->next;
			up->next = NULL;
			w->nidle--;
			return;
		}
	}
}

static void
idle_timeout_cb(uv_timer_t *t)
{
	struct upstream *up = t->data;
	pool_remove(up->w, up);
	up_close(up);
}

static void
up_write_cb(uv_write_t *req, int status)
{
	struct write_req *wr = (struct write_req *)req;
	struct upstream *up = wr->up;

	up->writing -= wr->len;
	free(wr);
	if (up->closing)
		return;
	if (status < 0) {
		struct exchange *ex = up->ex;
		up_close(up);
		if (ex != NULL)
			exchange_fail(ex, 502);
		return;
	}
	if (up->ex != NULL && up->writing < PROXY_BUFFER_HIGH / 2)
		http_conn_resume(up->ex->c);
}

static void
up_write_raw(struct upstream *up, const char *data, size_t len)
{
	if (len == 0 || up->closing)
		return;
	if (up->writing == 0 && up->connected) {
		/* write first; queue only what the socket did not take */
		uv_buf_t tb = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
		int n = uv_try_write((uv_stream_t *)&up->tcp, &tb, 1);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
		if (len == 0)
			return;
	}
	struct write_req *wr = xmalloc(sizeof(*wr) + len);
	memcpy(wr->data, data, len);
	wr->len = len;
	wr->up = up;
	uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
	if (uv_write(&wr->req, (uv_stream_t *)&up->tcp, &b, 1, up_write_cb) < 0) {
		free(wr);
		return;
	}
	up->writing += len;
	if (up->ex != NULL && up->writing > PROXY_BUFFER_HIGH)
		http_conn_pause(up->ex->c);
}

/* Sends what the TLS layer has for the backend: handshake, records,
 * alerts. */
static void
up_tls_flush(struct upstream *up)
{
	up->tls_out.len = 0;
	if (http_tls_conn_take(up->tls, &up->tls_out) > 0)
		up_write_raw(up, up->tls_out.data, up->tls_out.len);
}

/* Plaintext for the backend, sealed first when it speaks TLS. A TLS
 * layer that refuses it is broken for good: its next read fails too. */
static void
up_write(struct upstream *up, const char *data, size_t len)
{
	if (up->tls == NULL) {
		up_write_raw(up, data, len);
		return;
	}
	if (len == 0 || up->closing)
		return;
	if (http_tls_conn_write(up->tls, data, len) < 0)
		log_warn("backend %s: TLS write refused", up->be_name);
	up_tls_flush(up);
}

/* Sends body bytes as the request's framing wants them. */
static void
up_write_body(struct upstream *up, int chunked, const char *data, size_t len)
{
	if (chunked) {
		char hex[24];
		int n = snprintf(hex, sizeof(hex), "%zx\r\n", len);
		up_write(up, hex, (size_t)n);
		up_write(up, data, len);
		up_write(up, "\r\n", 2);
	} else {
		up_write(up, data, len);
	}
}

/* Exchanges. */

static void
exchange_log(struct exchange *ex)
{
	if (!ex->w->p->access_log)
		return;
	const struct proxy_vhost *v = &ex->cr->c->vhosts[ex->vh];
	printf("%s \"%s %s\" %d %s %s %llums\n", http_conn_remote(ex->c), ex->method, ex->target,
	    ex->status, v->name, ex->be >= 0 ? v->backends[ex->be].name : "-",
	    (unsigned long long)(uv_now(ex->w->loop) - ex->start_ms));
}

static void
exchange_free(struct exchange *ex)
{
	if (ex->up != NULL) {
		ex->up->ex = NULL;
		up_close(ex->up);
	}
	backend_done(ex, 0);
	conf_ref_put(ex->cr);
	buf_fini(&ex->head);
	buf_fini(&ex->pending);
	buf_fini(&ex->replay);
	if (http_conn_data(ex->c) == ex)
		http_conn_set_data(ex->c, NULL);
	free(ex);
}

/* The answer is complete: pool the backend connection if it may be. */
static void
exchange_done(struct exchange *ex)
{
	struct upstream *up = ex->up;

	exchange_log(ex);
	if (up != NULL) {
		ex->up = NULL;
		up->ex = NULL;
		uv_timer_stop(&up->timer);
		if (up->keepalive && !up->closing && up->state == UP_BODY &&
		    up->w->nidle < PROXY_MAX_IDLE_PER_BACKEND * 4 && up->in.len == 0) {
			up->state = UP_IDLE;
			up->next = up->w->idle;
			up->w->idle = up;
			up->w->nidle++;
			up_read_start(up); /* to see the backend close it */
			uv_timer_start(&up->timer, idle_timeout_cb, PROXY_IDLE_TIMEOUT_MS, 0);
		} else {
			up_close(up);
		}
	}
	http_conn_end_response(ex->c);
	exchange_free(ex);
}

static void
exchange_fail(struct exchange *ex, int status)
{
	if (ex->up != NULL) {
		ex->up->ex = NULL;
		up_close(ex->up);
		ex->up = NULL;
	}
	ex->status = status;
	exchange_log(ex);
	if (ex->resp_started) {
		http_conn_close(ex->c, 1);
	} else {
		struct http_response res;
		http_response_init(&res);
		http_response_error(&res, status,
		    status == 504 ? "The backend did not answer in time."
		                  : "The backend could not be reached or answered badly.");
		http_conn_respond(ex->c, &res);
		http_response_fini(&res);
	}
	exchange_free(ex);
}

/* The dial or a pooled connection failed before any answer: try again
 * where the request can be replayed, else answer the error. */
static void
exchange_retry(struct exchange *ex, int status, int same_backend)
{
	if (ex->up != NULL) {
		ex->up->ex = NULL;
		up_close(ex->up);
		ex->up = NULL;
	}
	if (!ex->can_replay || ex->resp_started) {
		backend_done(ex, status != 0);
		exchange_fail(ex, status ? status : 502);
		return;
	}
	/* what was written goes out again from the replay copy */
	buf_fini(&ex->pending);
	buf_init(&ex->pending);
	if (ex->replay.len > ex->head.len)
		buf_append(
		    &ex->pending, ex->replay.data + ex->head.len, ex->replay.len - ex->head.len);
	ex->replay.len = 0;
	if (!same_backend) {
		backend_done(ex, 1);
		ex->be = pick_backend(ex);
		if (ex->be < 0) {
			exchange_fail(ex, status);
			return;
		}
	}
	exchange_dial(ex);
}

static void
up_timeout_cb(uv_timer_t *t)
{
	struct upstream *up = t->data;
	struct exchange *ex = up->ex;

	if (ex == NULL)
		return;
	if (up->state == UP_CONNECTING) {
		exchange_retry(ex, 504, 0);
	} else {
		backend_done(ex, 1);
		exchange_fail(ex, 504);
	}
}

/* Copies the backend's answer head to the client, minus hop-by-hop. */
static int
exchange_answer_head(struct exchange *ex, const struct http_response_head *rh)
{
	struct upstream *up = ex->up;
	const struct http_header *conn =
	    http_header_find(rh->headers, rh->num_headers, "connection");
	struct buf h;
	int64_t cl = -1;

	up->keepalive = rh->minor_version >= 1 &&
	    !(conn != NULL && http_header_has_token(conn->value, conn->value_len, "close"));
	up->chunked = 0;
	up->close_delimited = 0;
	up->body_left = 0;
	buf_init(&h);
	for (size_t i = 0; i < rh->num_headers; i++) {
		const struct http_header *x = &rh->headers[i];
		if (hy_strieq(x->name, x->name_len, "transfer-encoding")) {
			up->chunked = http_header_has_token(x->value, x->value_len, "chunked");
			continue;
		}
		if (hy_strieq(x->name, x->name_len, "content-length")) {
			uint64_t v;
			if (http_parse_content_length(x->value, x->value_len, &v) < 0) {
				buf_fini(&h);
				return -1;
			}
			cl = (int64_t)v;
			continue;
		}
		if (rh->status == 101 &&
		    (hy_strieq(x->name, x->name_len, "upgrade") ||
		        hy_strieq(x->name, x->name_len, "connection"))) {
			/* a tunnel keeps the handshake's own headers */
		} else if (is_hop(x->name, x->name_len, conn ? conn->value : NULL,
		               conn ? conn->value_len : 0)) {
			continue;
		}
		buf_append(&h, x->name, x->name_len);
		buf_append_str(&h, ": ");
		buf_append(&h, x->value, x->value_len);
		buf_append_str(&h, "\r\n");
	}
	int no_body = ex->head_only || rh->status == 204 || rh->status == 304 ||
	    (rh->status >= 100 && rh->status < 200);
	if (no_body) {
		up->body_left = 0;
	} else if (up->chunked) {
		cl = -1;
		http_chunked_init(&up->dec);
	} else if (cl >= 0) {
		up->body_left = (uint64_t)cl;
	} else {
		up->close_delimited = 1;
		up->keepalive = 0;
	}
	ex->status = rh->status;
	ex->resp_started = 1;
	int64_t client_len = ex->head_only && cl < 0 ? -1 : cl;
	http_conn_write_head(ex->c, rh->status, h.data != NULL ? h.data : "", h.len,
	    no_body && !ex->head_only ? 0 : client_len);
	buf_fini(&h);
	return no_body;
}

static void
shutdown_free_cb(uv_shutdown_t *req, int status)
{
	(void)status;
	free(req);
}

static void
client_tunnel_cb(struct http_conn *c, const char *data, ssize_t len)
{
	struct exchange *ex = http_conn_data(c);

	if (ex == NULL || ex->up == NULL)
		return;
	if (data == NULL || len <= 0) {
		if (ex->up->tls != NULL) {
			http_tls_conn_close_notify(ex->up->tls);
			up_tls_flush(ex->up);
		}
		uv_shutdown_t *sr = xcalloc(1, sizeof(*sr));
		if (uv_shutdown(sr, (uv_stream_t *)&ex->up->tcp, shutdown_free_cb) < 0)
			free(sr);
		return;
	}
	up_write(ex->up, data, (size_t)len);
}

/* Feeds answer bytes at p (len) to the client as the framing says.
 * Returns 1 when the body is complete. */
static int
up_body(struct upstream *up, char *p, size_t len, size_t *used)
{
	struct exchange *ex = up->ex;

	*used = len;
	if (up->close_delimited) {
		http_conn_write_body(ex->c, p, len);
		return 0;
	}
	if (up->chunked) {
		size_t n = len;
		ssize_t r = http_chunked_decode(&up->dec, p, &n);
		if (r == HTTP_PARSE_BAD || r < HTTP_PARSE_INCOMPLETE)
			return -1;
		http_conn_write_body(ex->c, p, n);
		if (r >= 0) {
			*used = len - (size_t)r;
			return 1;
		}
		return 0;
	}
	size_t take = len < up->body_left ? len : (size_t)up->body_left;
	http_conn_write_body(ex->c, p, take);
	up->body_left -= take;
	*used = take;
	return up->body_left == 0;
}

static void
up_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct upstream *up = h->data;
	(void)hint;
	if (up->tls != NULL) {
		*b = uv_buf_init(up->w->tls_scratch, sizeof(up->w->tls_scratch));
		return;
	}
	buf_reserve(&up->in, 65536);
	*b = uv_buf_init(up->in.data + up->in.len, (unsigned)(up->in.cap - up->in.len - 1));
}

static void
up_read(struct upstream *up, ssize_t n)
{
	uv_stream_t *st = (uv_stream_t *)&up->tcp;
	struct exchange *ex = up->ex;

	if (up->state == UP_IDLE) {
		/* a pooled connection speaks out of turn or closes: drop it */
		pool_remove(up->w, up);
		up_close(up);
		return;
	}
	if (ex == NULL) {
		up_close(up);
		return;
	}
	if (n < 0) {
		if (up->state == UP_TUNNEL) {
			http_conn_close(ex->c, 0);
			exchange_free(ex);
		} else if (up->state == UP_BODY && up->close_delimited && n == UV_EOF) {
			up->keepalive = 0;
			exchange_done(ex);
		} else if (!up->got_bytes && up->reused) {
			exchange_retry(ex, 502, 1);
		} else {
			backend_done(ex, !up->got_bytes);
			exchange_fail(ex, 502);
		}
		return;
	}
	up->got_bytes = 1;
	up->in.len += (size_t)n;
	if (up->state == UP_TUNNEL) {
		http_conn_write_raw(ex->c, up->in.data, up->in.len);
		up->in.len = 0;
		return;
	}
	uv_timer_again(&up->timer);
again:
	if (up->state == UP_HEAD) {
		struct http_response_head rh;
		int r = http_parse_response(up->in.data, up->in.len, up->last_len, &rh);
		if (r == HTTP_PARSE_INCOMPLETE) {
			up->last_len = up->in.len;
			if (up->in.len > PROXY_MAX_RESPONSE_HEAD) {
				backend_done(ex, 1);
				exchange_fail(ex, 502);
			}
			return;
		}
		if (r < 0) {
			backend_done(ex, 1);
			exchange_fail(ex, 502);
			return;
		}
		if (rh.status >= 100 && rh.status < 200 && rh.status != 101) {
			buf_consume(&up->in, (size_t)r);
			up->last_len = 0;
			if (up->in.len)
				goto again;
			return;
		}
		if (rh.status == 101 && ex->upgrade) {
			exchange_answer_head(ex, &rh);
			buf_consume(&up->in, (size_t)r);
			up->state = UP_TUNNEL;
			uv_timer_stop(&up->timer);
			http_conn_tunnel(ex->c, client_tunnel_cb);
			if (up->in.len) {
				http_conn_write_raw(ex->c, up->in.data, up->in.len);
				up->in.len = 0;
			}
			return;
		}
		int no_body = exchange_answer_head(ex, &rh);
		if (no_body < 0) {
			backend_done(ex, 1);
			exchange_fail(ex, 502);
			return;
		}
		buf_consume(&up->in, (size_t)r);
		up->last_len = 0;
		up->state = UP_BODY;
		if (no_body || (!up->chunked && !up->close_delimited && up->body_left == 0)) {
			exchange_done(ex);
			return;
		}
	}
	if (up->in.len == 0)
		return;
	size_t used;
	int done = up_body(up, up->in.data, up->in.len, &used);
	buf_consume(&up->in, used);
	if (done < 0) {
		backend_done(ex, 1);
		exchange_fail(ex, 502);
		return;
	}
	if (done) {
		if (up->in.len)
			up->keepalive = 0; /* more than the answer: do not reuse */
		up->in.len = 0;
		exchange_done(ex);
		return;
	}
	if (http_conn_write_queued(ex->c) > PROXY_BUFFER_HIGH) {
		uv_read_stop(st);
		up->reading = 0;
	}
}

static void exchange_send(struct exchange *ex);

/* The TLS layer failed: in the handshake, the next backend is tried (the
 * request was not sent); later it is a read error. */
static void
up_tls_error(struct upstream *up, const char *cause)
{
	struct exchange *ex = up->ex;

	log_warn("backend %s: %s", up->be_name, cause);
	if (up->state == UP_CONNECTING && ex != NULL)
		exchange_retry(ex, 502, 0);
	else
		up_read(up, UV_EPROTO);
}

/* Ciphertext from the backend: on through the handshake, then each
 * plaintext piece to up_read() as if the socket had given it. What one
 * socket read holds is decrypted whole even if up_read() stops reading:
 * a bounded overshoot, and no plaintext left stranded in the BIO. */
static void
up_tls_input(struct upstream *up, const char *data, size_t len)
{
	const char *cause = "TLS";

	if (http_tls_conn_feed(up->tls, data, len) < 0) {
		up_tls_error(up, "TLS: cannot buffer the input");
		return;
	}
	while (!up->closing) {
		buf_reserve(&up->in, PROXY_TLS_READ_CHUNK);
		ssize_t r = http_tls_conn_read(
		    up->tls, up->in.data + up->in.len, up->in.cap - up->in.len - 1, &cause);
		up_tls_flush(up);
		if (r == HTTP_TLS_ERROR) {
			up_tls_error(up, cause);
			return;
		}
		if (!up->tls_ready && http_tls_conn_established(up->tls)) {
			up->tls_ready = 1;
			uv_timer_stop(&up->timer);
			if (up->ex == NULL) {
				up_close(up);
				return;
			}
			exchange_send(up->ex);
			if (up->closing)
				return;
		}
		if (r == 0)
			return;
		up_read(up, r == HTTP_TLS_EOF ? UV_EOF : r);
		if (r < 0)
			return;
	}
}

static void
up_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct upstream *up = st->data;

	if (n == 0 || up->closing)
		return;
	struct http_conn *c = up->ex != NULL ? up->ex->c : NULL;
	/* everything this read gives the client leaves in one write */
	if (c != NULL)
		http_conn_cork(c);
	if (up->tls != NULL && n > 0)
		up_tls_input(up, b->base, (size_t)n);
	else if (up->tls != NULL && up->state == UP_CONNECTING)
		up_tls_error(up, "TLS handshake: the backend closed the connection");
	else
		up_read(up, n);
	if (c != NULL)
		http_conn_uncork(c);
}

static void
up_read_start(struct upstream *up)
{
	if (!up->reading && !up->closing &&
	    uv_read_start((uv_stream_t *)&up->tcp, up_alloc_cb, up_read_cb) == 0)
		up->reading = 1;
}

/* The connection is up: send the head and what body is waiting. */
static void
exchange_send(struct exchange *ex)
{
	struct upstream *up = ex->up;
	const struct proxy_vhost *v = &ex->cr->c->vhosts[ex->vh];

	up->state = UP_HEAD;
	up->got_bytes = 0;
	up->in.len = 0;
	up->last_len = 0;
	up_write(up, ex->head.data, ex->head.len);
	if (ex->can_replay) {
		buf_append(&ex->replay, ex->head.data, ex->head.len);
		buf_append(
		    &ex->replay, ex->pending.data != NULL ? ex->pending.data : "", ex->pending.len);
	}
	if (ex->pending.len)
		up_write_body(up, ex->req_chunked, ex->pending.data, ex->pending.len);
	ex->pending.len = 0;
	if (ex->body_done && ex->req_chunked)
		up_write(up, "0\r\n\r\n", 5);
	http_conn_resume(ex->c);
	up_read_start(up);
	uv_timer_start(&up->timer, up_timeout_cb, v->read_timeout_ms, v->read_timeout_ms);
}

static void
up_connect_cb(uv_connect_t *req, int status)
{
	struct upstream *up = req->data;
	struct exchange *ex = up->ex;

	if (up->closing)
		return;
	uv_timer_stop(&up->timer);
	if (ex == NULL) {
		up_close(up);
		return;
	}
	if (status < 0) {
		log_warn("backend %s: %s", up->be_name, uv_strerror(status));
		exchange_retry(ex, 502, 0);
		return;
	}
	uv_tcp_nodelay(&up->tcp, 1);
	up->connected = 1;
	if (up->tls_ctx == NULL) {
		exchange_send(ex);
		return;
	}
	/* the handshake, under the connect timeout, before the request */
	const char *cause = "TLS";
	up->tls = http_tls_conn_new(up->tls_ctx, up->be_host);
	if (up->tls == NULL) {
		log_warn("backend %s: cannot start TLS", up->be_name);
		exchange_retry(ex, 502, 0);
		return;
	}
	uv_timer_start(&up->timer, up_timeout_cb, ex->cr->c->vhosts[ex->vh].connect_timeout_ms, 0);
	up_read_start(up);
	if (http_tls_conn_read(up->tls, NULL, 0, &cause) < 0) {
		up_tls_error(up, cause);
		return;
	}
	up_tls_flush(up);
}

static void
exchange_dial(struct exchange *ex)
{
	const struct proxy_vhost *v = &ex->cr->c->vhosts[ex->vh];
	const struct proxy_backend *be = &v->backends[ex->be];
	struct worker *w = ex->w;
	struct http_tls *tls_ctx = be->tls ? ex->cr->client_tls[ex->vh] : NULL;

	/* a kept-alive connection to this backend first, made with the same
	 * TLS settings */
	for (struct upstream **pp = &w->idle; *pp != NULL; pp = &(*pp)->next) {
		struct upstream *up = *pp;
		if (strcmp(up->be_name, be->name) != 0 || up->tls_ctx != tls_ctx || up->closing)
			continue;
		*pp = up->next;
		up->next = NULL;
		w->nidle--;
		uv_timer_stop(&up->timer);
		up->ex = ex;
		up->reused = 1;
		ex->up = up;
		exchange_send(ex);
		return;
	}
	struct sockaddr_storage ss;
	if (uv_ip4_addr(be->host, be->port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(be->host, be->port, (struct sockaddr_in6 *)&ss) != 0) {
		/* names are resolved at start-up only: backends are addresses */
		if (strcmp(be->host, "localhost") != 0 ||
		    uv_ip4_addr("127.0.0.1", be->port, (struct sockaddr_in *)&ss) != 0) {
			log_warn("backend %s: not a numeric address", be->name);
			exchange_retry(ex, 502, 0);
			return;
		}
	}
	struct upstream *up = up_new(w, be, tls_ctx);
	up->ex = ex;
	up->state = UP_CONNECTING;
	ex->up = up;
	up->creq.data = up;
	if (uv_tcp_connect(&up->creq, &up->tcp, (struct sockaddr *)&ss, up_connect_cb) < 0) {
		exchange_retry(ex, 502, 0);
		return;
	}
	uv_timer_start(&up->timer, up_timeout_cb, v->connect_timeout_ms, 0);
}

/* Expands $host and $remote_addr in a proxy_set_header value. */
static void
expand(struct buf *out, const char *value, const struct http_request *req, struct http_conn *c)
{
	size_t hl = 0;
	const char *host = http_request_header(req, "Host", &hl);

	for (const char *p = value; *p;) {
		if (strncmp(p, "$host", 5) == 0) {
			buf_append(out, host != NULL ? host : "", host != NULL ? hl : 0);
			p += 5;
		} else if (strncmp(p, "$remote_addr", 12) == 0) {
			buf_append_str(out, http_conn_remote(c));
			p += 12;
		} else {
			buf_append_char(out, *p++);
		}
	}
}

static void
build_head(struct exchange *ex, const struct http_request *req, const struct proxy_vhost *v)
{
	const struct http_request_head *h = &req->head;
	const struct http_header *conn = http_header_find(h->headers, h->num_headers, "connection");
	const char *remote = http_conn_remote(ex->c);
	struct buf *o = &ex->head;
	size_t xff_len = 0;
	const char *xff = NULL;

	buf_append(o, h->method, h->method_len);
	buf_append_char(o, ' ');
	buf_append(o, h->target, h->target_len);
	buf_append_str(o, " HTTP/1.1\r\n");
	for (size_t i = 0; i < h->num_headers; i++) {
		const struct http_header *x = &h->headers[i];
		int overridden = 0;
		for (size_t k = 0; k < v->nset; k++)
			overridden |= hy_strieq(x->name, x->name_len, v->set[k].name);
		if (overridden)
			continue;
		if (hy_strieq(x->name, x->name_len, "x-forwarded-for")) {
			xff = x->value;
			xff_len = x->value_len;
			continue;
		}
		if (is_hop(x->name, x->name_len, conn ? conn->value : NULL,
		        conn ? conn->value_len : 0))
			continue;
		buf_append(o, x->name, x->name_len);
		buf_append_str(o, ": ");
		buf_append(o, x->value, x->value_len);
		buf_append_str(o, "\r\n");
	}
	for (size_t k = 0; k < v->nset; k++) {
		buf_append_str(o, v->set[k].name);
		buf_append_str(o, ": ");
		expand(o, v->set[k].value, req, ex->c);
		buf_append_str(o, "\r\n");
	}
	buf_append_str(o, "X-Forwarded-For: ");
	if (xff != NULL) {
		buf_append(o, xff, xff_len);
		buf_append_str(o, ", ");
	}
	const char *proto = http_conn_is_tls(ex->c) ? "https" : "http";
	buf_append_str(o, remote);
	buf_printf(o, "\r\nX-Forwarded-Proto: %s\r\nForwarded: for=", proto);
	int v6 = strchr(remote, ':') != NULL;
	buf_printf(o, v6 ? "\"[%s]\"" : "%s", remote);
	buf_printf(o, ";proto=%s\r\n", proto);
	if (ex->upgrade) {
		size_t ul = 0;
		const char *up = http_request_header(req, "Upgrade", &ul);
		buf_append_str(o, "Connection: Upgrade\r\nUpgrade: ");
		buf_append(o, up, ul);
		buf_append_str(o, "\r\n");
	}
	if (req->chunked)
		buf_append_str(o, "Transfer-Encoding: chunked\r\n");
	else if (req->content_length > 0)
		buf_printf(o, "Content-Length: %llu\r\n", (unsigned long long)req->content_length);
	buf_append_str(o, "\r\n");
}

static int
proxy_on_head(struct http_conn *c, struct http_request *req)
{
	struct proxy *p = http_conn_ctx(c);
	struct worker *w = http_conn_loop(c)->data;
	size_t hl = 0;
	const char *host = http_request_header(req, "Host", &hl);

	pthread_mutex_lock(&p->lock);
	struct conf_ref *cr = p->cur;
	atomic_fetch_add(&cr->refs, 1);
	pthread_mutex_unlock(&p->lock);
	const struct proxy_vhost *v = proxy_conf_match(cr->c, host, hl, http_conn_local_port(c));
	if (v == NULL) {
		conf_ref_put(cr);
		return 421;
	}
	struct exchange *ex = xcalloc(1, sizeof(*ex));
	ex->c = c;
	ex->w = w;
	ex->cr = cr;
	ex->vh = (size_t)(v - cr->c->vhosts);
	ex->be = -1;
	ex->start_ms = uv_now(w->loop);
	ex->head_only = req->method == HTTP_HEAD;
	ex->req_chunked = req->chunked;
	ex->can_replay = !req->chunked && req->content_length <= PROXY_REPLAY_MAX;
	snprintf(
	    ex->method, sizeof(ex->method), "%.*s", (int)req->head.method_len, req->head.method);
	snprintf(
	    ex->target, sizeof(ex->target), "%.*s", (int)req->head.target_len, req->head.target);
	const struct http_header *conn =
	    http_header_find(req->head.headers, req->head.num_headers, "connection");
	ex->upgrade = conn != NULL &&
	    http_header_has_token(conn->value, conn->value_len, "upgrade") &&
	    http_request_header(req, "Upgrade", NULL) != NULL;
	buf_init(&ex->head);
	buf_init(&ex->pending);
	buf_init(&ex->replay);
	build_head(ex, req, v);
	http_conn_set_data(c, ex);
	ex->be = pick_backend(ex);
	exchange_dial(ex);
	return 0;
}

static void
proxy_on_body(struct http_conn *c, struct http_request *req, const char *data, size_t len)
{
	struct exchange *ex = http_conn_data(c);

	(void)req;
	if (ex == NULL)
		return;
	if (ex->up == NULL || ex->up->state == UP_CONNECTING) {
		buf_append(&ex->pending, data, len);
		if (ex->pending.len > PROXY_BUFFER_HIGH)
			http_conn_pause(c);
		return;
	}
	if (ex->can_replay && ex->replay.len + len <= PROXY_REPLAY_MAX)
		buf_append(&ex->replay, data, len);
	else
		ex->can_replay = 0;
	up_write_body(ex->up, ex->req_chunked, data, len);
}

static void
proxy_on_request(struct http_conn *c, struct http_request *req)
{
	struct exchange *ex = http_conn_data(c);

	(void)req;
	if (ex == NULL)
		return;
	ex->body_done = 1;
	if (ex->req_chunked && ex->up != NULL && ex->up->state != UP_CONNECTING)
		up_write(ex->up, "0\r\n\r\n", 5);
}

static void
proxy_on_close(struct http_conn *c)
{
	struct exchange *ex = http_conn_data(c);

	if (ex != NULL)
		exchange_free(ex);
}

static void
proxy_on_drain(struct http_conn *c)
{
	struct exchange *ex = http_conn_data(c);

	if (ex != NULL && ex->up != NULL && ex->up->state == UP_BODY)
		up_read_start(ex->up);
}

const struct http_handler proxy_http_handler = {
	.on_head = proxy_on_head,
	.on_body = proxy_on_body,
	.on_request = proxy_on_request,
	.on_close = proxy_on_close,
	.on_drain = proxy_on_drain,
};
