/* http_conn.c — one HTTP/1.1 connection.
 *
 * Bytes in → http_parse → the handler → bytes out. Requests are taken one
 * at a time; the next pipelined one waits in the input buffer until the
 * current response is complete, which keeps responses in request order.
 * Output is accumulated while a batch of input is processed and written
 * once at the end (uv_try_write first, uv_write for what is left). A
 * connection is torn down in one place (conn_teardown) and freed in its
 * close callback once no reference remains.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "hychat/log.h"

/* What a plain HTTP client hears on a TLS port, in clear. */
#define CONN_TLS_REFUSAL_BODY "This port speaks HTTPS: use an https:// URL.\n"
#define CONN_TLS_REFUSAL_HEAD \
	"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n" \
	"Content-Length: "
#define CONN_TLS_FIRST_BYTE 0x16 /* a TLS handshake record */

static void conn_process(struct http_conn *c);
static void conn_flush(struct http_conn *c);
static void conn_teardown(struct http_conn *c);
static void conn_update_reading(struct http_conn *c);
static void conn_tls_release_idle(struct http_conn *c);

static const char *const method_names[] = {
#define HTTP_METHOD_NAME(m) #m,
	HTTP_METHODS(HTTP_METHOD_NAME)
#undef HTTP_METHOD_NAME
};

const char *
http_method_name(enum http_method m)
{
	return (unsigned)m < HTTP_METHOD_COUNT ? method_names[m] : "?";
}

static int
method_lookup(const char *s, size_t len)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(method_names); i++) {
		if (strlen(method_names[i]) == len && memcmp(method_names[i], s, len) == 0)
			return (int)i;
	}
	return -1;
}

static size_t
conn_queued(const struct http_conn *c)
{
	return c->out.len + c->wire.len + (c->writing ? c->inflight.len : 0);
}

static size_t
conn_max_input(const struct http_conn *c)
{
	return c->srv->cfg.max_header_bytes + HTTP_READ_CHUNK;
}

/* The request's storage, made on first use: its parsed head is most of a
 * connection's size, and an idle connection need not keep it. */
static struct http_request *
conn_req(struct http_conn *c)
{
	if (c->req == NULL)
		c->req = xcalloc(1, sizeof(*c->req));
	return c->req;
}

static void
conn_req_clear(struct http_conn *c)
{
	if (c->req != NULL)
		memset(c->req, 0, sizeof(*c->req));
}

static void
conn_free(struct http_conn *c)
{
	free(c->req);
	free(c->in);
	buf_fini(&c->path);
	buf_fini(&c->body);
	buf_fini(&c->out);
	buf_fini(&c->inflight);
	buf_fini(&c->wire);
	http_tls_conn_free(c->tls);
	free(c);
}

struct http_conn *
http_conn_ref(struct http_conn *c)
{
	c->refs++;
	return c;
}

void
http_conn_unref(struct http_conn *c)
{
	if (--c->refs == 0 && c->handle_closed)
		conn_free(c);
}

int
http_conn_closed(const struct http_conn *c)
{
	return c->closing;
}

static void
conn_closed_cb(uv_handle_t *h)
{
	struct http_conn *c = h->data;

	c->handle_closed = 1;
	if (c->drain_fn != NULL) {
		void (*fn)(struct http_conn *, void *) = c->drain_fn;
		c->drain_fn = NULL;
		fn(c, c->drain_arg);
	}
	if (c->srv->h->on_close != NULL)
		c->srv->h->on_close(c);
	http_server_conn_gone(c->srv, c);
	http_conn_unref(c);
}

/* The one teardown path: stop everything and close the handle. */
static void
conn_teardown(struct http_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	c->reading = 0;
	uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

static void
conn_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct http_conn *c = req->data;

	if (status < 0 && !c->closing)
		conn_teardown(c);
}

/* All output is written: shut down the write side if asked to, then
 * drain what the client still sends for a moment, so that a response
 * sent before the request was fully read is not lost to a reset. */
static void
conn_written(struct http_conn *c)
{
	if (c->closing || !c->want_close || c->shutdown_sent)
		return;
	if (c->tls != NULL && !c->tls_notified) {
		/* a TLS close: close_notify goes out before the TCP FIN */
		c->tls_notified = 1;
		http_tls_conn_close_notify(c->tls);
		conn_flush(c);
		return;
	}
	c->shutdown_sent = 1;
	c->state = CONN_LINGER;
	c->phase_ms = c->srv->now_ms;
	c->in_len = 0;
	c->head_len = 0;
	c->sreq.data = c;
	if (c->eof || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_shutdown_cb) < 0)
		conn_teardown(c);
	else
		conn_update_reading(c);
}

static void
conn_close_graceful(struct http_conn *c)
{
	c->want_close = 1;
	if (!c->in_process)
		conn_flush(c);
}

static void
conn_write_cb(uv_write_t *req, int status)
{
	struct http_conn *c = req->data;

	c->writing = 0;
	c->inflight.len = 0;
	if (c->closing)
		return;
	if (status < 0) {
		conn_teardown(c);
		return;
	}
	c->write_ms = c->srv->now_ms;
	conn_flush(c);
	if (c->closing)
		return;
	if (conn_queued(c) <= c->srv->cfg.max_write_queue / 2) {
		if (c->drain_fn != NULL) {
			void (*fn)(struct http_conn *, void *) = c->drain_fn;
			c->drain_fn = NULL;
			fn(c, c->drain_arg);
		}
		if (!c->closing && c->srv->h->on_drain != NULL)
			c->srv->h->on_drain(c);
	}
	if (!c->closing)
		conn_update_reading(c);
	conn_tls_release_idle(c);
}

/* TLS: encrypts the plaintext output into wire, after whatever the
 * handshake has to say. Before the handshake is done the plaintext waits. */
static void
conn_tls_seal(struct http_conn *c)
{
	if (c->tls == NULL)
		return;
	if (c->out.len && c->tls_ready && !c->tls_notified) {
		if (http_tls_conn_write(c->tls, c->out.data, c->out.len) < 0) {
			conn_teardown(c);
			return;
		}
		c->out.len = 0;
	}
	http_tls_conn_take(c->tls, &c->wire);
}

static void
conn_flush(struct http_conn *c)
{
	if (c->closing || c->writing)
		return;
	conn_tls_seal(c);
	if (c->closing)
		return;
	/* what goes on the wire: the plaintext, or its encryption */
	struct buf *w = c->srv->cfg.tls != NULL ? &c->wire : &c->out;
	if (w->len == 0) {
		conn_written(c);
		return;
	}
	uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n == UV_EAGAIN || n == UV_ENOSYS)
		n = 0;
	else if (n < 0) {
		conn_teardown(c);
		return;
	}
	if (n > 0)
		c->write_ms = c->srv->now_ms;
	if ((size_t)n == w->len) {
		w->len = 0;
		conn_written(c);
		return;
	}
	/* Hand the rest to libuv; new output accumulates in out meanwhile. */
	struct buf tmp = c->inflight;
	c->inflight = *w;
	*w = tmp;
	w->len = 0;
	b = uv_buf_init(c->inflight.data + n, (unsigned)(c->inflight.len - (size_t)n));
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb) < 0) {
		conn_teardown(c);
		return;
	}
	c->writing = 1;
	conn_update_reading(c);
}

/* The input moved while a request head points into it: move the views. */
static void
conn_rebase(struct http_conn *c, uintptr_t old)
{
	if (c->req == NULL)
		return;
	struct http_request_head *h = &c->req->head;
	uintptr_t base = (uintptr_t)c->in;

#define REBASE(p) \
	do { \
		if ((p) != NULL) \
			(p) = (const char *)(base + ((uintptr_t)(p)-old)); \
	} while (0)
	REBASE(h->method);
	REBASE(h->target);
	REBASE(h->path);
	REBASE(h->query);
	for (size_t i = 0; i < h->num_headers; i++) {
		REBASE(h->headers[i].name);
		REBASE(h->headers[i].value);
	}
#undef REBASE
}

/* Grows the input buffer when little room is left, up to its limit. */
static void
conn_grow_input(struct http_conn *c)
{
	size_t max = conn_max_input(c);

	if (c->in_cap - c->in_len < HTTP_INITIAL_INPUT && c->in_cap < max) {
		size_t cap = c->in_cap ? c->in_cap * 2 : HTTP_INITIAL_INPUT;
		if (cap > max)
			cap = max;
		uintptr_t old = (uintptr_t)c->in;
		c->in = xrealloc(c->in, cap);
		c->in_cap = cap;
		if (c->head_len && (uintptr_t)c->in != old)
			conn_rebase(c, old);
	}
}

static void
conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct http_conn *c = h->data;

	(void)hint;
	if (c->srv->cfg.tls != NULL) {
		*b = uv_buf_init(c->srv->tls_scratch, sizeof(c->srv->tls_scratch));
		return;
	}
	if (c->in == NULL) {
		*b = uv_buf_init(c->srv->scratch, sizeof(c->srv->scratch));
		return;
	}
	conn_grow_input(c);
	*b = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

/* The client's side is closed (a FIN, or a TLS close_notify). */
static void
conn_on_eof(struct http_conn *c)
{
	c->eof = 1;
	if (c->reading)
		uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = 0;
	if (c->state == CONN_TUNNEL) {
		if (c->tunnel_cb != NULL)
			c->tunnel_cb(c, NULL, 0);
		return;
	}
	if (c->state == CONN_WAIT)
		return; /* answer the request, then close */
	if (c->state == CONN_LINGER || c->state == CONN_BODY || conn_queued(c) == 0)
		conn_teardown(c);
	else
		conn_close_graceful(c);
}

/* Plain HTTP on a TLS port: a 400 in clear, then a close. */
static void
conn_tls_refuse_plain(struct http_conn *c)
{
	log_info("%s: plain HTTP on a TLS port: answered 400 and closed", c->remote);
	c->tls_notified = 1;
	buf_append_str(&c->wire, CONN_TLS_REFUSAL_HEAD);
	buf_append_u64(&c->wire, sizeof(CONN_TLS_REFUSAL_BODY) - 1);
	buf_append_str(&c->wire, "\r\n\r\n" CONN_TLS_REFUSAL_BODY);
	conn_close_graceful(c);
}

/* Moves the plaintext the TLS layer has into the input buffer (or the
 * tunnel) while there is room; the rest stays in the memory BIO until
 * conn_process() makes room. Returns -1 once the connection is failing. */
static int
conn_tls_pump(struct http_conn *c)
{
	struct http_server *s = c->srv;
	const char *cause = NULL;

	while (!c->closing && !c->want_close && c->tls != NULL) {
		char *dst;
		size_t cap;
		/* the scratch is free again: its ciphertext is in the BIO */
		if (c->state == CONN_TUNNEL || c->state == CONN_LINGER) {
			dst = s->tls_scratch;
			cap = sizeof(s->tls_scratch);
		} else if (c->in == NULL) {
			dst = s->tls_scratch;
			cap = HTTP_INITIAL_INPUT; /* what the new input buffer holds */
		} else {
			conn_grow_input(c);
			dst = c->in + c->in_len;
			cap = c->in_cap - c->in_len;
			if (cap == 0)
				break; /* full: conn_process() reads on when it has room */
		}
		ssize_t n = http_tls_conn_read(c->tls, dst, cap, &cause);
		if (!c->tls_ready && http_tls_conn_established(c->tls)) {
			c->tls_ready = 1;
			c->phase_ms = s->now_ms; /* the idle time starts now */
		}
		if (n == 0)
			break;
		if (n == HTTP_TLS_EOF) {
			conn_on_eof(c);
			return -1;
		}
		if (n < 0) {
			log_info("%s: %s", c->remote, cause);
			c->tls_notified = 1; /* the alert is already queued */
			conn_close_graceful(c);
			return -1;
		}
		if (c->state == CONN_TUNNEL) {
			if (c->tunnel_cb != NULL)
				c->tunnel_cb(c, dst, n);
		} else if (c->state == CONN_LINGER) {
			/* discarded */
		} else if (dst == s->tls_scratch) {
			c->in = xmalloc(HTTP_INITIAL_INPUT);
			c->in_cap = HTTP_INITIAL_INPUT;
			memcpy(c->in, dst, (size_t)n);
			c->in_len = (size_t)n;
		} else {
			c->in_len += (size_t)n;
		}
	}
	return c->closing ? -1 : 0;
}

/* Ciphertext arrived: feed it to the TLS layer, then on as plaintext. */
static void
conn_tls_input(struct http_conn *c, const char *data, size_t len)
{
	if (c->state == CONN_LINGER || c->want_close)
		return; /* nothing more is read: the connection is closing */
	if (c->tls == NULL) {
		c->tls = http_tls_conn_new(c->srv->cfg.tls, NULL);
		if (c->tls == NULL) {
			log_error("%s: cannot start TLS: out of memory", c->remote);
			conn_teardown(c);
			return;
		}
	}
	int r = http_tls_conn_feed(c->tls, data, len);
	if (r == HTTP_TLS_NOT_TLS) {
		conn_tls_refuse_plain(c);
		return;
	}
	if (r < 0) {
		conn_teardown(c);
		return;
	}
	if (c->state == CONN_TUNNEL) {
		c->in_process++;
		conn_tls_pump(c);
		c->in_process--;
		if (!c->closing && !c->in_process)
			conn_flush(c);
		return;
	}
	conn_process(c);
}

static void
conn_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct http_conn *c = st->data;

	if (n == 0 || c->closing)
		return;
	if (n == UV_ENOBUFS) {
		conn_update_reading(c);
		return;
	}
	if (n < 0) {
		if (n != UV_EOF) {
			conn_teardown(c);
			return;
		}
		conn_on_eof(c);
		return;
	}
	c->read_ms = c->srv->now_ms;
	if (c->srv->cfg.tls != NULL) {
		conn_tls_input(c, b->base, (size_t)n);
		return;
	}
	if (b->base == c->srv->scratch) {
		/* The first bytes: only now does the connection get a buffer. */
		if (c->state == CONN_LINGER)
			return;
		if (c->state == CONN_TUNNEL) {
			if (c->tunnel_cb != NULL)
				c->tunnel_cb(c, b->base, n);
			return;
		}
		c->in = xmalloc(HTTP_INITIAL_INPUT);
		c->in_cap = HTTP_INITIAL_INPUT;
		memcpy(c->in, b->base, (size_t)n);
	}
	c->in_len += (size_t)n;
	if (c->state == CONN_LINGER) {
		c->in_len = 0;
		return;
	}
	if (c->state == CONN_TUNNEL) {
		size_t len = c->in_len;
		c->in_len = 0;
		if (c->tunnel_cb != NULL)
			c->tunnel_cb(c, c->in, (ssize_t)len);
		return;
	}
	conn_process(c);
}

static void
conn_update_reading(struct http_conn *c)
{
	int want =
	    !c->closing && !c->eof && !c->paused && conn_queued(c) <= c->srv->cfg.max_write_queue;

	if (want && c->in_len >= c->in_cap && c->in_cap >= conn_max_input(c))
		want = 0; /* input full while a request is being answered */
	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) < 0) {
			conn_teardown(c);
			return;
		}
		c->reading = 1;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = 0;
	}
}

void
http_conn_format_head(struct http_conn *c, struct buf *out, int status, const char *extra,
    size_t extra_len, int64_t content_length)
{
	struct http_server *s = c->srv;

	buf_reserve(out, 160 + extra_len);
	buf_append_str(out, "HTTP/1.1 ");
	buf_append_u64(out, (uint64_t)status);
	buf_append_char(out, ' ');
	buf_append_str(out, http_status_reason(status));
	buf_append_str(out, "\r\nDate: ");
	buf_append(out, s->date, HTTP_DATE_LEN);
	buf_append_str(out, "\r\n");
	if (s->cfg.server_name != NULL) {
		buf_append_str(out, "Server: ");
		buf_append_str(out, s->cfg.server_name);
		buf_append_str(out, "\r\n");
	}
	c->resp_chunked = 0;
	c->resp_close_delimited = 0;
	if (content_length >= 0) {
		buf_append_str(out, "Content-Length: ");
		buf_append_u64(out, (uint64_t)content_length);
		buf_append_str(out, "\r\n");
	} else if (content_length == -1 && c->head_only) {
		/* a HEAD answer carries no body, so it needs no framing */
	} else if (content_length == -1 && conn_req(c)->head.minor_version >= 1) {
		buf_append_str(out, "Transfer-Encoding: chunked\r\n");
		c->resp_chunked = 1;
	} else if (content_length == -1) {
		c->resp_close_delimited = 1;
		c->close_after = 1;
	}
	if (status >= 200) {
		if (c->close_after || !conn_req(c)->keep_alive)
			buf_append_str(out, "Connection: close\r\n");
		else if (conn_req(c)->head.minor_version == 0)
			buf_append_str(out, "Connection: keep-alive\r\n");
	}
	if (status >= 200 && s->cfg.tls != NULL && s->cfg.tls_headers != NULL)
		buf_append_str(out, s->cfg.tls_headers);
	if (extra_len)
		buf_append(out, extra, extra_len);
	buf_append_str(out, "\r\n");
}

static void
conn_access_log(struct http_conn *c)
{
	struct http_request *r = conn_req(c);

	if (!c->srv->cfg.access_log || r->head.method == NULL)
		return;
	printf("%s \"%.*s %.*s HTTP/1.%d\" %d %llu %llums\n", c->remote, (int)r->head.method_len,
	    r->head.method, (int)r->head.target_len, r->head.target, r->head.minor_version,
	    c->resp_status, (unsigned long long)c->resp_bytes,
	    (unsigned long long)(c->srv->now_ms - r->start_ms));
}

/* The response and the request body are both complete: move on to the
 * next request (already in the buffer if the client pipelines). */
static void
conn_request_done(struct http_conn *c)
{
	conn_access_log(c);
	if (c->close_after || !conn_req(c)->keep_alive) {
		conn_close_graceful(c);
		return;
	}
	size_t rest = c->in_len - c->head_len;
	memmove(c->in, c->in + c->head_len, rest);
	c->in_len = rest;
	c->head_len = 0;
	c->last_len = 0;
	c->state = CONN_IDLE;
	c->resp = RESP_NONE;
	c->phase_ms = c->srv->now_ms;
	conn_req_clear(c);
	if (c->body.cap > HTTP_MAX_BODY_BYTES / 4)
		buf_fini(&c->body);
	if (!c->in_process)
		conn_process(c);
}

static void
conn_response_done(struct http_conn *c)
{
	c->resp = RESP_DONE;
	if (c->state == CONN_WAIT) {
		conn_request_done(c);
	} else if (c->state == CONN_BODY) {
		/* answered before the body was read: the rest is discarded */
		c->close_after = 1;
		conn_access_log(c);
		conn_close_graceful(c);
	}
	if (!c->in_process)
		conn_flush(c);
}

/* Appends a body from the caller's memory. When nothing is queued before
 * this response, the head and the body go out in one writev now and only
 * what the socket did not take is copied. */
static void
conn_append_ref(struct http_conn *c, size_t before, const char *data, size_t len)
{
	if (before != 0 || c->writing || c->closing || c->tls != NULL || c->in_batch) {
		buf_append(&c->out, data, len);
		return;
	}
	uv_buf_t b[2] = { uv_buf_init(c->out.data, (unsigned)c->out.len),
		uv_buf_init((char *)(uintptr_t)data, (unsigned)len) };
	int n = uv_try_write((uv_stream_t *)&c->tcp, b, 2);
	if (n < 0)
		n = 0; /* EAGAIN, or an error the next flush reports */
	if (n > 0)
		c->write_ms = c->srv->now_ms;
	size_t head = c->out.len, done = (size_t)n;
	if (done >= head) {
		c->out.len = 0;
		buf_append(&c->out, data + (done - head), len - (done - head));
	} else {
		buf_consume(&c->out, done);
		buf_append(&c->out, data, len);
	}
}

static void
conn_send(struct http_conn *c, struct http_response *res)
{
	size_t blen = res->body_ref != NULL ? res->body_ref_len : res->body.len;
	size_t before = c->out.len;

	if (res->close)
		c->close_after = 1;
	int64_t len = res->no_body ? -2 : (int64_t)blen;
	http_conn_format_head(c, &c->out, res->status, res->headers.data, res->headers.len, len);
	if (!c->head_only && !res->no_body && blen) {
		if (res->body_ref != NULL)
			conn_append_ref(c, before, res->body_ref, blen);
		else
			buf_append(&c->out, res->body.data, blen);
	}
	c->resp_status = res->status;
	c->resp_bytes = res->no_body ? 0 : blen;
	http_response_release_body(res);
}

/* Answers a protocol error and closes the connection after it. */
static void
conn_fail(struct http_conn *c, int status)
{
	if (c->resp != RESP_NONE) {
		conn_teardown(c);
		return;
	}
	struct http_response res;
	http_response_init(&res);
	if (c->srv->cfg.error_page != NULL)
		c->srv->cfg.error_page(&res, status, http_status_reason(status));
	else
		http_response_error(&res, status, NULL);
	res.close = 1;
	c->head_only = 0;
	conn_send(c, &res);
	http_response_fini(&res);
	c->resp = RESP_DONE;
	c->state = CONN_WAIT;
	conn_access_log(c);
	conn_close_graceful(c);
}

/* An answer given outside conn_process() (a deferred one) waits, corked,
 * for the end of the loop's turn with the others given in that turn:
 * answers that come back together from a store leave back to back, and
 * whoever reads them wakes once for all. */
static void
conn_batch(struct http_conn *c)
{
	struct http_server *s = c->srv;

	if (c->in_batch)
		return;
	c->in_batch = 1;
	c->in_process++; /* released by http_conn_batch_flush() */
	http_conn_ref(c);
	c->batch_next = s->batched;
	s->batched = c;
	uv_check_start(&s->batch, http_conn_batch_flush);
}

void
http_conn_batch_flush(uv_check_t *h)
{
	struct http_server *s = h->data;

	uv_check_stop(&s->batch);
	while (s->batched != NULL) {
		struct http_conn *c = s->batched;
		s->batched = c->batch_next;
		c->batch_next = NULL;
		c->in_batch = 0;
		if (s->freeing)
			c->in_process--; /* closing: no further request */
		else
			http_conn_uncork(c); /* the next pipelined request, the write */
		http_conn_unref(c);
	}
}

void
http_conn_respond(struct http_conn *c, struct http_response *res)
{
	if (c->closing || c->resp != RESP_NONE || c->state == CONN_LINGER) {
		http_response_release_body(res);
		return;
	}
	if (c->srv->cfg.batch_answers && !c->in_process && !c->srv->freeing)
		conn_batch(c);
	conn_send(c, res);
	conn_response_done(c);
}

int
http_conn_write_head(
    struct http_conn *c, int status, const char *headers, size_t len, int64_t content_length)
{
	if (c->closing || c->resp != RESP_NONE || c->state == CONN_LINGER)
		return -1;
	if (status == 101 || (status >= 200 && (status == 204 || status == 304)))
		content_length = -2;
	if (status >= 100 && status < 200 && status != 101) {
		/* an interim response: the final one still follows */
		http_conn_format_head(c, &c->out, status, headers, len, -2);
	} else {
		http_conn_format_head(c, &c->out, status, headers, len, content_length);
		c->resp = RESP_STREAMING;
		c->resp_status = status;
		c->resp_bytes = 0;
	}
	if (!c->in_process)
		conn_flush(c);
	return 0;
}

int
http_conn_write_body(struct http_conn *c, const char *data, size_t len)
{
	if (c->closing || c->resp != RESP_STREAMING)
		return -1;
	if (c->head_only || len == 0)
		return 0;
	if (c->resp_chunked) {
		char hex[24];
		int n = snprintf(hex, sizeof(hex), "%zx\r\n", len);
		buf_append(&c->out, hex, (size_t)n);
		buf_append(&c->out, data, len);
		buf_append(&c->out, "\r\n", 2);
	} else {
		buf_append(&c->out, data, len);
	}
	c->resp_bytes += len;
	if (!c->in_process)
		conn_flush(c);
	return 0;
}

void
http_conn_end_response(struct http_conn *c)
{
	if (c->closing || c->resp != RESP_STREAMING)
		return;
	if (c->resp_chunked && !c->head_only)
		buf_append(&c->out, "0\r\n\r\n", 5);
	if (c->resp_close_delimited)
		c->close_after = 1;
	conn_response_done(c);
}

void
http_conn_cork(struct http_conn *c)
{
	c->in_process++;
}

void
http_conn_uncork(struct http_conn *c)
{
	if (--c->in_process > 0 || c->closing)
		return;
	/* conn_process() parses what waited, flushes, and resumes reading */
	conn_process(c);
}

size_t
http_conn_write_queued(const struct http_conn *c)
{
	return conn_queued(c);
}

void
http_conn_on_drain(struct http_conn *c, void (*fn)(struct http_conn *c, void *arg), void *arg)
{
	c->drain_fn = fn;
	c->drain_arg = arg;
	if (c->closing || conn_queued(c) <= c->srv->cfg.max_write_queue / 2) {
		c->drain_fn = NULL;
		fn(c, arg);
	}
}

void
http_conn_pause(struct http_conn *c)
{
	c->paused = 1;
	conn_update_reading(c);
}

void
http_conn_resume(struct http_conn *c)
{
	c->paused = 0;
	/* TLS may hold decrypted bytes that no new read will bring out */
	if (c->tls != NULL && !c->in_process && !c->closing)
		conn_process(c);
	else
		conn_update_reading(c);
}

void
http_conn_tunnel(
    struct http_conn *c, void (*on_data)(struct http_conn *c, const char *data, ssize_t len))
{
	if (c->closing)
		return;
	c->tunnel_cb = on_data;
	c->state = CONN_TUNNEL;
	c->resp = RESP_DONE;
	/* bytes the client sent after its request head belong to the tunnel */
	size_t rest = c->in_len - c->head_len;
	memmove(c->in, c->in + c->head_len, rest);
	c->in_len = 0;
	c->head_len = 0;
	conn_req_clear(c);
	if (rest)
		on_data(c, c->in, (ssize_t)rest);
	if (!c->closing && c->tls != NULL && !c->in_process)
		conn_tls_pump(c); /* records already decrypted belong to it too */
	if (!c->closing && c->eof)
		on_data(c, NULL, 0);
	if (!c->in_process)
		conn_flush(c);
	if (!c->closing)
		conn_update_reading(c);
}

int
http_conn_write_raw(struct http_conn *c, const char *data, size_t len)
{
	if (c->closing)
		return -1;
	buf_append(&c->out, data, len);
	if (!c->in_process)
		conn_flush(c);
	return 0;
}

void
http_conn_close(struct http_conn *c, int abort)
{
	if (abort)
		conn_teardown(c);
	else
		conn_close_graceful(c);
}

void *
http_conn_ctx(const struct http_conn *c)
{
	return c->srv->ctx;
}

void *
http_conn_data(const struct http_conn *c)
{
	return c->data;
}

void
http_conn_set_data(struct http_conn *c, void *data)
{
	c->data = data;
}

uv_loop_t *
http_conn_loop(const struct http_conn *c)
{
	return c->srv->loop;
}

int
http_conn_is_tls(const struct http_conn *c)
{
	return c->srv->cfg.tls != NULL;
}

int
http_conn_local_port(const struct http_conn *c)
{
	return c->srv->port;
}

const char *
http_conn_remote(const struct http_conn *c)
{
	return c->remote;
}

struct http_request *
http_conn_request(struct http_conn *c)
{
	return c->state == CONN_BODY || c->state == CONN_WAIT ? conn_req(c) : NULL;
}

/* Skips "http://authority" of an absolute-form target (RFC 9112 3.2.2). */
static void
target_path(const struct http_request_head *h, const char **path, size_t *len)
{
	*path = h->path;
	*len = h->path_len;
	if (*len > 7 && (h->path[0] == 'h' || h->path[0] == 'H')) {
		const char *p = memchr(h->path, ':', *len);
		if (p != NULL && p + 3 <= h->path + *len && p[1] == '/' && p[2] == '/') {
			const char *slash = memchr(p + 3, '/', (size_t)(h->path + *len - (p + 3)));
			*path = slash != NULL ? slash : "/";
			*len = slash != NULL ? (size_t)(h->path + *len - slash) : 1;
		}
	}
}

/* Works out the framing and the connection semantics of a parsed head.
 * Returns 0, or the status to fail with. */
static int
conn_check_head(struct http_conn *c)
{
	struct http_request *r = conn_req(c);
	struct http_request_head *h = &r->head;
	const struct http_header *te = NULL;
	int hosts = 0, have_cl = 0;

	int m = method_lookup(h->method, h->method_len);
	if (m < 0)
		return 501;
	r->method = (enum http_method)m;

	for (size_t i = 0; i < h->num_headers; i++) {
		const struct http_header *hd = &h->headers[i];
		if (hy_strieq(hd->name, hd->name_len, "host")) {
			hosts++;
		} else if (hy_strieq(hd->name, hd->name_len, "content-length")) {
			uint64_t v;
			if (http_parse_content_length(hd->value, hd->value_len, &v) < 0)
				return 400;
			if (have_cl && v != r->content_length)
				return 400;
			have_cl = 1;
			r->content_length = v;
		} else if (hy_strieq(hd->name, hd->name_len, "transfer-encoding")) {
			if (te != NULL)
				return 400;
			te = hd;
		} else if (hy_strieq(hd->name, hd->name_len, "connection")) {
			if (http_header_has_token(hd->value, hd->value_len, "close"))
				r->keep_alive = -1;
			else if (http_header_has_token(hd->value, hd->value_len, "keep-alive") &&
			    r->keep_alive == 0)
				r->keep_alive = 2;
		} else if (hy_strieq(hd->name, hd->name_len, "expect")) {
			if (!hy_strieq(hd->value, hd->value_len, "100-continue"))
				return 417;
			r->expect_continue = 1;
		}
	}
	if (r->keep_alive == -1)
		r->keep_alive = 0;
	else if (h->minor_version >= 1)
		r->keep_alive = 1;
	else
		r->keep_alive = r->keep_alive == 2;
	if (hosts > 1 || (hosts == 0 && h->minor_version >= 1))
		return 400;
	if (te != NULL) {
		/* chunked must be the only coding; with a length too it would be
		 * a smuggling vector (RFC 9112 6.3) */
		if (have_cl || h->minor_version == 0)
			return 400;
		if (!hy_strieq(te->value, te->value_len, "chunked"))
			return 501;
		r->chunked = 1;
		r->content_length = UINT64_MAX;
		http_chunked_init(&c->chunked);
	}
	uint64_t max = c->srv->cfg.max_body_bytes;
	if (max && !r->chunked && r->content_length > max)
		return 413;

	const char *path;
	size_t plen;
	target_path(h, &path, &plen);
	if (plen > HTTP_MAX_PATH)
		return 414;
	if (plen == 0 || (path[0] != '/' && !(plen == 1 && path[0] == '*')))
		return 400;
	c->path.len = 0;
	buf_reserve(&c->path, plen);
	ssize_t dl = http_percent_decode(c->path.data, path, plen, 0);
	if (dl < 0)
		return 400;
	c->path.len = (size_t)dl;
	c->path.data[dl] = '\0';
	r->path = c->path.data;
	r->path_len = (size_t)dl;
	return 0;
}

static void
conn_end_body(struct http_conn *c)
{
	struct http_request *r = conn_req(c);

	c->state = CONN_WAIT;
	if (c->srv->h->on_body == NULL) {
		r->body = c->body.data != NULL ? c->body.data : "";
		r->body_len = c->body.len;
	}
	c->srv->h->on_request(c, r);
}

/* Parses a head from the input. Returns 1 to go on processing. */
static int
conn_parse_head(struct http_conn *c)
{
	struct http_server *s = c->srv;

	if (c->in_len == 0) {
		c->state = CONN_IDLE;
		return 0;
	}
	if (c->state == CONN_IDLE && s->cfg.tls == NULL &&
	    (unsigned char)c->in[0] == CONN_TLS_FIRST_BYTE) {
		/* no request line starts so: a client speaking TLS */
		log_info(
		    "%s: TLS handshake on a plain HTTP port: answered 400 and closed", c->remote);
		conn_fail(c, 400);
		return 0;
	}
	if (c->state == CONN_IDLE) {
		c->state = CONN_HEAD;
		c->phase_ms = s->now_ms;
	}
	int r = http_parse_request(c->in, c->in_len, c->last_len, &conn_req(c)->head);
	if (r == HTTP_PARSE_INCOMPLETE) {
		if (c->in_len >= s->cfg.max_header_bytes)
			conn_fail(c, 431);
		c->last_len = c->in_len;
		return 0;
	}
	if (r < 0 || (size_t)r > s->cfg.max_header_bytes) {
		conn_fail(c,
		    r == HTTP_PARSE_TOO_MANY_HEADERS || r > 0 ? 431
		        : r == HTTP_PARSE_BAD_VERSION         ? 505
		                                              : 400);
		return 0;
	}
	c->head_len = (size_t)r;
	c->last_len = 0;

	struct http_request *req = conn_req(c);
	req->conn = c;
	req->start_ms = s->now_ms;
	c->resp = RESP_NONE;
	c->close_after = 0;
	c->body.len = 0;
	c->head_only = 0;
	int status = conn_check_head(c);
	if (status) {
		conn_fail(c, status);
		return 0;
	}
	c->head_only = req->method == HTTP_HEAD;
	if (s->h->on_head != NULL) {
		status = s->h->on_head(c, req);
		if (c->closing)
			return 0;
		if (status >= 400) {
			conn_fail(c, status);
			return 0;
		}
	}
	int has_body = req->chunked || req->content_length > 0;
	if (has_body && req->expect_continue && req->head.minor_version >= 1 &&
	    c->resp == RESP_NONE) {
		buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
		conn_flush(c);
	}
	if (has_body) {
		c->state = CONN_BODY;
		c->body_left = req->content_length;
		c->phase_ms = s->now_ms;
		return 1;
	}
	conn_end_body(c);
	return 1;
}

/* Moves body bytes from the input to the handler or the body buffer.
 * Returns 1 when the body is complete. */
static int
conn_read_body(struct http_conn *c)
{
	struct http_server *s = c->srv;
	struct http_request *req = conn_req(c);
	size_t avail = c->in_len - c->head_len;
	char *p = c->in + c->head_len;
	size_t payload, leftover;
	int done;

	if (avail == 0)
		return 0;
	if (req->chunked) {
		size_t len = avail;
		ssize_t r = http_chunked_decode(&c->chunked, p, &len);
		if (r == HTTP_PARSE_BAD || r < HTTP_PARSE_INCOMPLETE) {
			conn_fail(c, 400);
			return 0;
		}
		payload = len;
		done = r >= 0;
		leftover = done ? (size_t)r : 0;
	} else {
		payload = avail < c->body_left ? avail : (size_t)c->body_left;
		c->body_left -= payload;
		done = c->body_left == 0;
		leftover = avail - payload;
	}
	if (payload) {
		if (s->h->on_body != NULL) {
			s->h->on_body(c, req, p, payload);
			if (c->closing)
				return 0;
		} else {
			if (s->cfg.max_body_bytes &&
			    c->body.len + payload > s->cfg.max_body_bytes) {
				conn_fail(c, 413);
				return 0;
			}
			buf_append(&c->body, p, payload);
		}
	}
	memmove(p, c->in + c->in_len - leftover, leftover);
	c->in_len = c->head_len + leftover;
	if (!done)
		return 0;
	conn_end_body(c);
	return 1;
}

/* An idle TLS connection gives its buffers back: with the SSL object it
 * already costs several kilobytes, and thousands of idle keep-alive
 * clients should not each hold a request's and a response's worth too.
 * The next bytes start from the loop's scratch buffer, as at the accept. */
static void
conn_tls_release_idle(struct http_conn *c)
{
	if (c->tls == NULL || c->closing || c->state != CONN_IDLE || c->in_len != 0 || c->writing ||
	    c->out.len != 0 || c->wire.len != 0 || c->in_process)
		return;
	free(c->in);
	c->in = NULL;
	c->in_cap = 0;
	c->head_len = 0;
	c->last_len = 0;
	buf_fini(&c->out);
	buf_fini(&c->wire);
	buf_fini(&c->inflight);
	buf_fini(&c->path);
	buf_fini(&c->body);
	http_tls_conn_idle(c->tls);
	if (c->refs == 1) { /* no deferred handler holds the request */
		free(c->req);
		c->req = NULL;
	}
}

static void
conn_process(struct http_conn *c)
{
	c->in_process++;
	while (!c->closing && !c->want_close) {
		int go;
		if (c->tls != NULL && conn_tls_pump(c) < 0)
			break;
		if (c->state == CONN_IDLE || c->state == CONN_HEAD)
			go = conn_parse_head(c);
		else if (c->state == CONN_BODY)
			go = conn_read_body(c);
		else
			go = 0;
		if (!go)
			break;
	}
	c->in_process--;
	if (c->in_process || c->closing)
		return;
	if (c->eof && (c->state == CONN_IDLE || c->state == CONN_HEAD))
		c->want_close = 1;
	conn_flush(c);
	if (!c->closing)
		conn_update_reading(c);
	conn_tls_release_idle(c);
}

void
http_conn_sweep(struct http_conn *c, uint64_t now)
{
	const struct http_server_config *cfg = &c->srv->cfg;

	if (c->closing)
		return;
	if (c->writing && now - c->write_ms >= cfg->write_timeout_ms) {
		conn_teardown(c);
		return;
	}
	if (cfg->tls != NULL && !c->tls_ready && c->state != CONN_LINGER &&
	    now - c->phase_ms >= cfg->handshake_timeout_ms) {
		/* a half-finished handshake: nothing to answer it with */
		conn_teardown(c);
		return;
	}
	switch (c->state) {
	case CONN_IDLE:
		if (now - c->phase_ms >= cfg->idle_timeout_ms && !c->writing)
			conn_teardown(c);
		break;
	case CONN_HEAD:
		if (now - c->phase_ms >= cfg->header_timeout_ms)
			conn_fail(c, 408);
		break;
	case CONN_BODY:
		if (now - c->read_ms >= cfg->body_timeout_ms && !c->paused)
			conn_fail(c, 408);
		break;
	case CONN_LINGER:
		if (now - c->phase_ms >= HTTP_LINGER_MS)
			conn_teardown(c);
		break;
	case CONN_WAIT:
	case CONN_TUNNEL: break;
	}
}

void
http_conn_start(struct http_server *s, struct http_conn *c, int over_cap)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	c->srv = s;
	c->refs = 1;
	c->tcp.data = c;
	c->state = CONN_IDLE;
	c->phase_ms = c->read_ms = c->write_ms = s->now_ms;
	buf_init(&c->path);
	buf_init(&c->body);
	buf_init(&c->out);
	buf_init(&c->inflight);
	buf_init(&c->wire);
	strcpy(c->remote, "-");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&ss, c->remote, sizeof(c->remote));
		else if (ss.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote, sizeof(c->remote));
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (over_cap && s->cfg.tls != NULL) {
		/* a 503 would need a handshake first: closing is cheaper */
		conn_teardown(c);
		return;
	}
	if (over_cap) {
		/* answered cleanly rather than left hanging in the backlog */
		conn_fail(c, 503);
		conn_flush(c);
		return;
	}
	conn_update_reading(c);
}
