/* http_server.h — the HTTP/1.1 server: listeners, connections, limits.
 *
 * A server listens on one libuv loop (or on N worker loops with
 * SO_REUSEPORT). Each connection parses one request at a time with
 * http_parse and hands it to a struct http_handler; the next pipelined
 * request is not parsed until the current response is complete, so
 * responses always go out in request order. Output is written at once
 * when the socket takes it and queued otherwise; while the queue holds more
 * than max_write_queue bytes the connection stops reading.
 *
 * Errors of the protocol (400, 413, 431, 501, 505, timeouts, the connection
 * cap) are answered here; the handler only sees well-formed requests.
 */
#ifndef HYCHAT_HTTP_SERVER_H
#define HYCHAT_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hychat/http_parse.h"
#include "hychat/util.h"

#define HTTP_MAX_HEADER_BYTES (16 * 1024)
#define HTTP_MAX_BODY_BYTES (1024 * 1024)
#define HTTP_MAX_CONNS 10000
#define HTTP_MAX_WRITE_QUEUE (256 * 1024)
#define HTTP_HEADER_TIMEOUT_MS 10000
#define HTTP_BODY_TIMEOUT_MS 10000
#define HTTP_IDLE_TIMEOUT_MS 60000
#define HTTP_WRITE_TIMEOUT_MS 30000
#define HTTP_MAX_PATH 4096
#define HTTP_MAX_WORKERS 64

/* The methods the server knows, as an X-macro so names and enum agree. */
#define HTTP_METHODS(X) \
	X(GET) X(HEAD) X(POST) X(PUT) X(DELETE) X(OPTIONS) X(PATCH) X(CONNECT) X(TRACE)

enum http_method {
#define HTTP_METHOD_ENUM(m) HTTP_##m,
	HTTP_METHODS(HTTP_METHOD_ENUM)
#undef HTTP_METHOD_ENUM
	HTTP_METHOD_COUNT
};

const char *http_method_name(enum http_method m);
/* Returns the reason phrase of a status code ("Not Found"), or "Unknown". */
const char *http_status_reason(int status);

struct http_conn;
struct http_response;

struct http_request {
	struct http_request_head head; /* views into the connection's buffer */
	enum http_method method;
	char *path; /* percent-decoded path, NUL-terminated */
	size_t path_len;
	const char *body; /* the whole body (buffered handlers only) */
	size_t body_len;
	uint64_t content_length; /* declared length; with chunked, UINT64_MAX */
	int chunked;
	int keep_alive; /* the connection stays open after this exchange */
	int expect_continue; /* client sent Expect: 100-continue */
	uint64_t start_ms; /* when the head was complete */
	struct http_conn *conn;
	void *route_data; /* set by the router for the matched route */
	size_t num_params; /* path parameters captured by the router */
	struct {
		const char *name;
		const char *value;
		size_t value_len;
	} params[8];
};

/* Returns the request header's value, or NULL; *len receives its length. */
const char *http_request_header(const struct http_request *req, const char *name, size_t *len);
/* Copies a cookie's value into out; returns its length or -1. */
ssize_t http_request_cookie(
    const struct http_request *req, const char *name, char *out, size_t outsz);
/* Fills res with an error answer in the server's error_page format. */
void http_request_error(
    const struct http_request *req, struct http_response *res, int status, const char *msg);
/* Returns a path parameter captured by the router, or NULL. */
const char *http_request_param(const struct http_request *req, const char *name, size_t *len);

/* A response built by a handler: status, extra header lines, body. */
struct http_response {
	int status;
	struct buf headers; /* "Name: value\r\n" lines; framing headers are added by the server */
	struct buf body;
	int close; /* close the connection after this response */
	int no_body; /* 204/304-style: no body, no Content-Length */
	int deferred; /* set by a router handler that answers later itself */
	/* A body written from the caller's memory without a copy where the
	 * socket takes it at once; body_release(body_arg) is called when the
	 * server is done with it, before http_conn_respond() returns (or by
	 * http_response_reset()/_fini() if it was never sent). Used instead
	 * of body when body_ref is set. */
	const char *body_ref;
	size_t body_ref_len;
	void (*body_release)(void *arg);
	void *body_arg;
};

void http_response_init(struct http_response *res);
void http_response_fini(struct http_response *res);
/* Clears status, headers and body for reuse (keeps the allocations). */
void http_response_reset(struct http_response *res);
/* Releases body_ref, if any (see struct http_response). */
void http_response_release_body(struct http_response *res);
void http_response_header(struct http_response *res, const char *name, const char *value);
void http_response_headerf(struct http_response *res, const char *name, const char *fmt, ...)
    HY_PRINTF(3, 4);
/* Sets status, Content-Type and the body text. */
void http_response_text(
    struct http_response *res, int status, const char *type, const char *body, size_t len);
/* Sets a small HTML error page for status, with an optional message. */
void http_response_error(struct http_response *res, int status, const char *message);

/* What a server does with a request. on_head may reject a request by
 * returning an HTTP status >= 400 (the server answers it); 0 goes on.
 * When on_body is NULL the server buffers the body (up to max_body_bytes,
 * else 413) and calls on_request with req->body set; that handler answers
 * with http_conn_respond(), then or later. With on_body set, body bytes
 * (de-chunked) stream to it and on_request is called at the end of the
 * body. on_close tells the handler the connection is going away.
 * on_drain fires when a full write queue has drained (for backpressure). */
struct http_handler {
	int (*on_head)(struct http_conn *c, struct http_request *req);
	void (*on_body)(
	    struct http_conn *c, struct http_request *req, const char *data, size_t len);
	void (*on_request)(struct http_conn *c, struct http_request *req);
	void (*on_close)(struct http_conn *c);
	void (*on_drain)(struct http_conn *c);
};

struct http_tls;

/* One more address for http_server_run(): its own host, port and TLS
 * context, everything else from the config. */
struct http_listen {
	const char *host;
	int port;
	struct http_tls *tls; /* NULL: plain HTTP */
};

struct http_server_config {
	const char *host;
	int port;
	/* Speak TLS (see http_tls.h) with this context; NULL: plain HTTP.
	 * Plain HTTP on a TLS listener gets a 400 in clear and a TLS
	 * handshake on a plain one a close, each with a log line. */
	struct http_tls *tls;
	uint64_t handshake_timeout_ms; /* accept to end of the TLS handshake */
	/* further listeners run by http_server_run() on the same loops */
	const struct http_listen *more;
	size_t nmore;
	int workers;
	size_t max_conns; /* per worker */
	size_t max_header_bytes;
	uint64_t max_body_bytes; /* 0: no limit (streaming handlers) */
	size_t max_write_queue;
	uint64_t header_timeout_ms;
	uint64_t body_timeout_ms;
	uint64_t idle_timeout_ms;
	uint64_t write_timeout_ms;
	const char *server_name; /* the Server header; NULL for none */
	/* fills the body of an error answer (400, 404, 413, ...); NULL: an
	 * HTML page. The tracker sets http_json_error. */
	void (*error_page)(struct http_response *res, int status, const char *msg);
	int access_log; /* one line per request on stdout */
	/* "Name: value\r\n" lines added to every response of a TLS
	 * listener (httpd: Strict-Transport-Security); NULL for none */
	const char *tls_headers;
	/* Answers given with http_conn_respond() after the handler returned
	 * (deferred) are written at the end of the loop's turn, together,
	 * rather than one by one as they come: for a server whose answers
	 * come back in batches (the tracker's, from Redis). */
	int batch_answers;
};

/* Fills cfg with the defaults above. */
void http_server_config_defaults(struct http_server_config *cfg);

struct http_server;

/* Binds and listens on loop. Returns NULL with *err set (a static or
 * strerror-like reason) if the address cannot be bound. ctx is the
 * handler's, available through http_conn_ctx(). */
struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_config *cfg,
    const struct http_handler *h, void *ctx, const char **err);
/* Stops accepting, closes every connection and frees the server once the
 * loop has run the close callbacks. */
void http_server_free(struct http_server *s);
/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *s);

void *http_conn_ctx(const struct http_conn *c);
void *http_conn_data(const struct http_conn *c);
void http_conn_set_data(struct http_conn *c, void *data);
uv_loop_t *http_conn_loop(const struct http_conn *c);
/* 1 if the connection speaks TLS. */
int http_conn_is_tls(const struct http_conn *c);
/* The port of the listener that accepted the connection. */
int http_conn_local_port(const struct http_conn *c);
/* The peer address as text ("127.0.0.1"). */
const char *http_conn_remote(const struct http_conn *c);
/* The request being served, or NULL. */
struct http_request *http_conn_request(struct http_conn *c);

/* Sends a complete response to the current request; the response may be
 * reset or freed on return. HEAD requests get the head only. */
void http_conn_respond(struct http_conn *c, struct http_response *res);

/* Streaming responses: a head (headers without the framing ones), then
 * body pieces, then the end. content_length < 0 means chunked (or, for an
 * HTTP/1.0 client, close-delimited). Return 0, or -1 if the connection is
 * closing. */
int http_conn_write_head(
    struct http_conn *c, int status, const char *headers, size_t len, int64_t content_length);
int http_conn_write_body(struct http_conn *c, const char *data, size_t len);
void http_conn_end_response(struct http_conn *c);
/* Holds output written from outside the connection's own callbacks (a
 * backend's answer, say) until uncork, so that it leaves in one write;
 * uncork also goes on with pipelined requests that waited. Nests. */
void http_conn_cork(struct http_conn *c);
void http_conn_uncork(struct http_conn *c);
/* Bytes queued for writing and not yet taken by the socket. */
size_t http_conn_write_queued(const struct http_conn *c);

/* Calls fn once, when the queued output falls below half its limit, or
 * when the connection closes first (fn then sees http_conn_closed()).
 * For responders that produce a body piece by piece. */
void http_conn_on_drain(struct http_conn *c, void (*fn)(struct http_conn *c, void *arg), void *arg);

/* Stops / resumes reading from the client (backpressure from elsewhere). */
void http_conn_pause(struct http_conn *c);
void http_conn_resume(struct http_conn *c);

/* Turns the connection into a raw byte tunnel after the current response
 * head (for an Upgrade): bytes from the client go to on_data (NULL data:
 * the client closed); http_conn_write_raw() sends bytes back. */
void http_conn_tunnel(
    struct http_conn *c, void (*on_data)(struct http_conn *c, const char *data, ssize_t len));
int http_conn_write_raw(struct http_conn *c, const char *data, size_t len);

/* Keeps c allocated past its close, for a handler that answers later
 * (after work on the thread pool): take a ref, set res->deferred, and call
 * http_conn_respond() when done; on a closed connection that does nothing.
 * The request stays valid while the ref is held. */
struct http_conn *http_conn_ref(struct http_conn *c);
void http_conn_unref(struct http_conn *c);
int http_conn_closed(const struct http_conn *c);

/* Closes the connection after queued output is written (abort: now). */
void http_conn_close(struct http_conn *c, int abort);

/* Runs cfg->workers loops, each with its own server per listener
 * (cfg, then cfg->more), until SIGINT or SIGTERM. When a listener speaks
 * TLS, SIGHUP reloads the TLS contexts' certificates (http_tls_reload()),
 * logging the outcome; open connections keep theirs. init is called on each worker's loop before it runs (worker
 * index, loop, arg); fini on that loop when the worker is asked to stop,
 * to close the handles init opened; either may be NULL.
 * Returns 0, or 1 with *err set if a worker could not listen. */
int http_server_run(const struct http_server_config *cfg, const struct http_handler *h, void *ctx,
    void (*init)(int worker, uv_loop_t *loop, void *arg),
    void (*fini)(int worker, uv_loop_t *loop, void *arg), void *arg, const char **err);

#endif
