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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "hychat/proxy_head.h"
#include "proxy_internal.h"

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
	int head_held; /* the head waits to leave with the body (exchange_send) */
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

/* Backend choice for an exchange: proxy_pool.c's, with its own record
 * of the backends tried and the one in use. */

static int
pick_backend(struct exchange *ex)
{
	return proxy_backend_pick(ex->w, ex->cr, ex->vh, &ex->tries);
}

static void
backend_done(struct exchange *ex, int failed)
{
	if (ex->be < 0)
		return;
	proxy_backend_done(ex->w, ex->cr, ex->vh, ex->be, failed);
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
	buf_fini(&up->out);
	free(up);
}

void
proxy_up_close(struct upstream *up)
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
	buf_init(&up->out);
	uv_tcp_init(w->loop, &up->tcp);
	uv_timer_init(w->loop, &up->timer);
	up->tcp.data = up->timer.data = up;
	up->open_handles = 2;
	buf_init(&up->in);
	return up;
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
		proxy_up_close(up);
		if (ex != NULL)
			exchange_fail(ex, 502);
		return;
	}
	if (up->ex != NULL && up->writing < PROXY_BUFFER_HIGH / 2)
		http_conn_resume(up->ex->c);
}

/* Writes a then b (either may be empty) in one system call when the
 * socket takes them; queues, in one copy, what it did not. */
static void
up_write_now(struct upstream *up, const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen + blen == 0 || up->closing)
		return;
	if (up->writing == 0 && up->connected) {
		/* write first; queue only what the socket did not take */
		uv_buf_t tb[2] = { uv_buf_init((char *)(uintptr_t)a, (unsigned)alen),
			uv_buf_init((char *)(uintptr_t)b, (unsigned)blen) };
		int n = uv_try_write((uv_stream_t *)&up->tcp, tb, blen > 0 ? 2 : 1);
		size_t took = n > 0 ? (size_t)n : 0;
		size_t froma = took < alen ? took : alen;
		a += froma;
		alen -= froma;
		b += took - froma;
		blen -= took - froma;
		if (alen + blen == 0)
			return;
	}
	size_t len = alen + blen;
	struct write_req *wr = xmalloc(sizeof(*wr) + len);
	if (alen > 0)
		memcpy(wr->data, a, alen);
	if (blen > 0)
		memcpy(wr->data + alen, b, blen);
	wr->len = len;
	wr->up = up;
	uv_buf_t ub = uv_buf_init(wr->data, (unsigned)len);
	if (uv_write(&wr->req, (uv_stream_t *)&up->tcp, &ub, 1, up_write_cb) < 0) {
		free(wr);
		return;
	}
	up->writing += len;
	if (up->ex != NULL && up->writing > PROXY_BUFFER_HIGH)
		http_conn_pause(up->ex->c);
}

/* Writes what up holds for the end of the turn, now. */
static void
up_flush(struct upstream *up)
{
	if (up->out.len == 0)
		return;
	size_t len = up->out.len;
	up->out.len = 0; /* up_write_now() copies what it cannot write */
	up_write_now(up, up->out.data, len, NULL, 0);
	if (up->out.cap > PROXY_BUFFER_HIGH)
		buf_fini(&up->out); /* a body's burst: not kept for the pool */
}

void
proxy_flush_cb(uv_check_t *h)
{
	struct worker *w = h->data;

	uv_check_stop(&w->flush);
	/* Each was queued this turn, and a connection closed this turn is
	 * freed only after the checks (libuv's closing phase). */
	while (w->to_flush != NULL) {
		struct upstream *up = w->to_flush;
		w->to_flush = up->next_flush;
		up->next_flush = NULL;
		up->flush_queued = 0;
		if (up->closing)
			up->out.len = 0;
		else
			up_flush(up);
	}
}

/* Bytes for a connected backend wait for the end of the turn (the
 * worker's check), with whatever else the turn has for it. */
static void
up_write_raw2(struct upstream *up, const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen + blen == 0 || up->closing)
		return;
	if (!up->connected) {
		up_write_now(up, a, alen, b, blen);
		return;
	}
	buf_append(&up->out, a, alen);
	buf_append(&up->out, b, blen);
	if (up->flush_queued)
		return;
	struct worker *w = up->w;
	up->flush_queued = 1;
	up->next_flush = w->to_flush;
	w->to_flush = up;
	uv_check_start(&w->flush, proxy_flush_cb);
}

static void
up_write_raw(struct upstream *up, const char *data, size_t len)
{
	up_write_raw2(up, data, len, NULL, 0);
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
		proxy_up_close(ex->up);
	}
	backend_done(ex, 0);
	proxy_conf_ref_put(ex->cr);
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
		proxy_pool_put(up);
	}
	http_conn_end_response(ex->c);
	exchange_free(ex);
}

static void
exchange_fail(struct exchange *ex, int status)
{
	if (ex->up != NULL) {
		ex->up->ex = NULL;
		proxy_up_close(ex->up);
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
		proxy_up_close(ex->up);
		ex->up = NULL;
	}
	if (!ex->can_replay || ex->resp_started) {
		backend_done(ex, status != 0);
		exchange_fail(ex, status ? status : 502);
		return;
	}
	/* What was written goes out again from the replay copy. With nothing
	 * written since the last try (its dial failed too), the body is still
	 * all in pending: rebuilding it from the empty copy would send the
	 * next backend a head without its body, answered 408 ten seconds on. */
	if (ex->replay.len > 0) {
		buf_fini(&ex->pending);
		buf_init(&ex->pending);
		if (ex->replay.len > ex->head.len)
			buf_append(&ex->pending, ex->replay.data + ex->head.len,
			    ex->replay.len - ex->head.len);
		ex->replay.len = 0;
	}
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

/* Copies the backend's answer head to the client, minus hop-by-hop.
 * Returns 1 when the answer has no body, -1 when its head is unusable. */
static int
exchange_answer_head(struct exchange *ex, const struct http_response_head *rh)
{
	struct upstream *up = ex->up;
	struct proxy_answer a;
	struct buf h;

	buf_init(&h);
	if (proxy_head_response(&h, rh, ex->head_only, &a) < 0) {
		buf_fini(&h);
		return -1;
	}
	up->keepalive = a.keepalive;
	up->chunked = a.chunked;
	up->close_delimited = a.close_delimited;
	up->body_left = a.body_left;
	if (!a.no_body && a.chunked)
		http_chunked_init(&up->dec);
	ex->status = rh->status;
	ex->resp_started = 1;
	http_conn_write_head(ex->c, rh->status, h.data != NULL ? h.data : "", h.len, a.client_len);
	buf_fini(&h);
	return a.no_body;
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
		up_flush(ex->up); /* the FIN after every byte */
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

/* The backend's answer cannot be passed on: it counts against the
 * backend, and the client gets a 502 (or loses the connection). */
static void
exchange_bad_answer(struct exchange *ex)
{
	backend_done(ex, 1);
	exchange_fail(ex, 502);
}

/* A pooled connection speaks out of turn or closes: drop it. */
static void
up_read_idle(struct upstream *up)
{
	proxy_pool_remove(up->w, up);
	proxy_up_close(up);
}

/* The backend closed or failed: the end of a tunnel or of a body that
 * ends at close, a pooled connection that had gone stale (the request
 * goes again), or a 502. */
static void
up_read_error(struct upstream *up, struct exchange *ex, ssize_t n)
{
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
}

/* After 101 Switching Protocols the bytes go on as they come. */
static void
up_read_tunnel(struct upstream *up, struct exchange *ex)
{
	http_conn_write_raw(ex->c, up->in.data, up->in.len);
	up->in.len = 0;
}

/* The backend agreed to the upgrade: its head (len bytes) to the client,
 * then both ways become a tunnel, starting with what followed the head. */
static void
up_open_tunnel(
    struct upstream *up, struct exchange *ex, const struct http_response_head *rh, size_t len)
{
	exchange_answer_head(ex, rh);
	buf_consume(&up->in, len);
	up->state = UP_TUNNEL;
	uv_timer_stop(&up->timer);
	http_conn_tunnel(ex->c, client_tunnel_cb);
	if (up->in.len)
		up_read_tunnel(up, ex);
}

/* Reads the answer's head, skipping interim (1xx) answers. Returns 1
 * when its body follows in up->in, 0 when there is nothing more to do
 * (the head is incomplete, or the exchange has ended or become a
 * tunnel). */
static int
up_read_head(struct upstream *up, struct exchange *ex)
{
	struct http_response_head rh;
	int r;

	for (;;) {
		r = http_parse_response(up->in.data, up->in.len, up->last_len, &rh);
		if (r == HTTP_PARSE_INCOMPLETE) {
			up->last_len = up->in.len;
			if (up->in.len > PROXY_MAX_RESPONSE_HEAD)
				exchange_bad_answer(ex);
			return 0;
		}
		if (r < 0) {
			exchange_bad_answer(ex);
			return 0;
		}
		if (rh.status < 100 || rh.status >= 200 || rh.status == 101)
			break;
		buf_consume(&up->in, (size_t)r);
		up->last_len = 0;
		if (up->in.len == 0)
			return 0;
	}
	if (rh.status == 101 && ex->upgrade) {
		up_open_tunnel(up, ex, &rh, (size_t)r);
		return 0;
	}
	int no_body = exchange_answer_head(ex, &rh);
	if (no_body < 0) {
		exchange_bad_answer(ex);
		return 0;
	}
	buf_consume(&up->in, (size_t)r);
	up->last_len = 0;
	up->state = UP_BODY;
	if (no_body || (!up->chunked && !up->close_delimited && up->body_left == 0)) {
		exchange_done(ex);
		return 0;
	}
	return 1;
}

/* Passes on what body up->in holds; pauses the backend while the
 * client's write queue is full. */
static void
up_read_body(struct upstream *up, struct exchange *ex)
{
	size_t used;

	if (up->in.len == 0)
		return;
	int done = up_body(up, up->in.data, up->in.len, &used);
	buf_consume(&up->in, used);
	if (done < 0) {
		exchange_bad_answer(ex);
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
		uv_read_stop((uv_stream_t *)&up->tcp);
		up->reading = 0;
	}
}

/* n bytes the backend gave (in up->in), or a read error. */
static void
up_read(struct upstream *up, ssize_t n)
{
	struct exchange *ex = up->ex;

	if (up->state == UP_IDLE) {
		up_read_idle(up);
		return;
	}
	if (ex == NULL) {
		proxy_up_close(up);
		return;
	}
	if (n < 0) {
		up_read_error(up, ex, n);
		return;
	}
	up->got_bytes = 1;
	up->in.len += (size_t)n;
	if (up->state == UP_TUNNEL) {
		up_read_tunnel(up, ex);
		return;
	}
	uv_timer_again(&up->timer);
	if (up->state == UP_HEAD && !up_read_head(up, ex))
		return;
	up_read_body(up, ex);
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
				proxy_up_close(up);
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

void
proxy_up_read_start(struct upstream *up)
{
	if (!up->reading && !up->closing &&
	    uv_read_start((uv_stream_t *)&up->tcp, up_alloc_cb, up_read_cb) == 0)
		up->reading = 1;
}

/* Sends the head exchange_send() held, if it did. */
static void
exchange_release_head(struct exchange *ex)
{
	if (!ex->head_held || ex->up == NULL)
		return;
	ex->head_held = 0;
	up_write(ex->up, ex->head.data, ex->head.len);
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
	/* With the body still to come, most often within this same turn, the
	 * head waits to leave with its first bytes (or the request's end):
	 * one write, and the backend reads the request whole at once. */
	ex->head_held = !ex->body_done && !ex->upgrade && ex->pending.len == 0 && up->tls == NULL;
	if (!ex->head_held)
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
	proxy_up_read_start(up);
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
		proxy_up_close(up);
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
	proxy_up_read_start(up);
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
	struct upstream *pooled = proxy_pool_take(w, be->name, tls_ctx);
	if (pooled != NULL) {
		pooled->ex = ex;
		pooled->reused = 1;
		ex->up = pooled;
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

static int
proxy_on_head(struct http_conn *c, struct http_request *req)
{
	struct proxy *p = http_conn_ctx(c);
	struct worker *w = http_conn_loop(c)->data;
	size_t hl = 0;
	const char *host = http_request_header(req, "Host", &hl);

	struct conf_ref *cr = proxy_conf_ref_get(p);
	const struct proxy_vhost *v = proxy_conf_match(cr->c, host, hl, http_conn_local_port(c));
	if (v == NULL) {
		proxy_conf_ref_put(cr);
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
	if (p->access_log) { /* for exchange_log() only: two printfs a request */
		snprintf(ex->method, sizeof(ex->method), "%.*s", (int)req->head.method_len,
		    req->head.method);
		snprintf(ex->target, sizeof(ex->target), "%.*s", (int)req->head.target_len,
		    req->head.target);
	}
	ex->upgrade = proxy_head_is_upgrade(req);
	buf_init(&ex->head);
	buf_init(&ex->pending);
	buf_init(&ex->replay);
	proxy_head_request(
	    &ex->head, req, v, http_conn_remote(c), http_conn_is_tls(c), ex->upgrade);
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
	if (ex->head_held && !ex->req_chunked && ex->up->tls == NULL) {
		ex->head_held = 0;
		up_write_raw2(ex->up, ex->head.data, ex->head.len, data, len);
		return;
	}
	exchange_release_head(ex);
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
	if (ex->up != NULL && ex->up->state != UP_CONNECTING)
		exchange_release_head(ex);
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
		proxy_up_read_start(ex->up);
}

const struct http_handler proxy_http_handler = {
	.on_head = proxy_on_head,
	.on_body = proxy_on_body,
	.on_request = proxy_on_request,
	.on_close = proxy_on_close,
	.on_drain = proxy_on_drain,
};
