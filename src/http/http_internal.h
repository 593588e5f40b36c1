/* http_internal.h — what http_server.c and http_conn.c share: the server
 * and connection structures. Not part of the public interface. */
#ifndef HYCHAT_HTTP_INTERNAL_H
#define HYCHAT_HTTP_INTERNAL_H

#include "hychat/http_server.h"
#include "hychat/http_tls.h"

#define HTTP_READ_CHUNK 16384
#define HTTP_INITIAL_INPUT 4096
#define HTTP_LINGER_MS 2000
#define HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

enum conn_state {
	CONN_IDLE, /* waiting for the first byte of a request */
	CONN_HEAD, /* part of a request head has arrived */
	CONN_BODY, /* reading the request body */
	CONN_WAIT, /* body read; waiting for the handler to finish answering */
	CONN_TUNNEL, /* raw bytes both ways after an Upgrade */
	CONN_LINGER, /* response sent and write side shut; draining input */
};

enum resp_state {
	RESP_NONE, /* nothing written for the current request */
	RESP_STREAMING, /* head written, body pieces may follow */
	RESP_DONE, /* the whole response is queued */
};

struct http_server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_timer_t sweep;
	struct http_server_config cfg;
	const struct http_handler *h;
	void *ctx;
	struct http_conn *conns; /* every live connection, for sweeps and shutdown */
	size_t nconns;
	/* cfg.batch_answers: connections answered this turn, written at its
	 * end (http_conn.c) */
	uv_check_t batch;
	struct http_conn *batched;
	int port;
	int open_handles;
	int freeing;
	char date[HTTP_DATE_LEN + 1];
	uint64_t now_ms;
	/* Reads land here while a connection owns no input buffer, so a
	 * connection that is only opened and closed (a flood, a port scan)
	 * never allocates one. Shared by every connection of this loop. */
	char scratch[HTTP_INITIAL_INPUT];
	/* TLS connections read ciphertext here; it goes straight into the
	 * connection's memory BIO, so one buffer per loop serves them all. */
	char tls_scratch[HTTP_READ_CHUNK];
};

struct http_conn {
	uv_tcp_t tcp;
	struct http_server *srv;
	struct http_conn *prev, *next;
	int refs;
	int closing; /* uv_close() called */
	int handle_closed;
	int in_process; /* inside conn_process(): flush at its end */
	enum conn_state state;
	enum resp_state resp;

	/* Input: [head of the current request][unconsumed bytes]. */
	char *in;
	size_t in_len, in_cap;
	size_t head_len; /* bytes of the current request head, pinned */
	size_t last_len; /* input already scanned for the end of the head */
	int reading; /* uv_read_start() in effect */
	int paused; /* paused by the application */

	/* the request being read or answered; NULL while an idle TLS
	 * connection has given its memory back (conn_req() makes it) */
	struct http_request *req;
	struct buf path;
	struct buf body;
	uint64_t body_left; /* Content-Length bytes still to read */
	struct http_chunked chunked;
	int head_only; /* HEAD: no response body */

	/* Output: bytes not yet handed to uv_write, and the write in flight. */
	struct buf out;
	struct buf inflight;
	uv_write_t wreq;
	int writing;
	int want_close; /* shut down once the output is written */
	int close_after; /* close once the current response is written */
	int resp_chunked;
	int resp_close_delimited;
	int resp_status;
	uint64_t resp_bytes;
	int shutdown_sent;
	uv_shutdown_t sreq;

	uint64_t phase_ms; /* when the current phase began (timeouts) */

	int eof; /* the client shut its side */
	uint64_t read_ms; /* last byte read */
	uint64_t write_ms; /* last write progress */
	void (*drain_fn)(struct http_conn *c, void *arg);
	void *drain_arg;
	void (*tunnel_cb)(struct http_conn *c, const char *data, ssize_t len);
	void *data;
	char remote[48];

	/* TLS (NULL: plain HTTP): made at the first byte, so a connection
	 * that never speaks costs no SSL object. in/out above hold plaintext;
	 * wire holds ciphertext not yet handed to the socket. */
	struct http_tls_conn *tls;
	struct buf wire;
	int tls_ready; /* handshake complete */
	int tls_notified; /* close_notify queued (or not to be sent) */

	struct http_conn *batch_next; /* in the server's batched, corked */
	int in_batch;
};

/* Takes a freshly accepted connection (server.c → conn.c). */
void http_conn_start(struct http_server *s, struct http_conn *c, int over_cap);
/* Applies the timeouts to c at time now (called by the server's sweep). */
void http_conn_sweep(struct http_conn *c, uint64_t now);
/* Writes the head of a response: status line, Date, framing, then extra. */
void http_conn_format_head(struct http_conn *c, struct buf *out, int status, const char *extra,
    size_t extra_len, int64_t content_length);
/* Called when a connection's handle is closed and its last ref dropped. */
void http_server_conn_gone(struct http_server *s, struct http_conn *c);
/* Writes the answers batched this turn (the server's check handle; also
 * called once at the server's end). */
void http_conn_batch_flush(uv_check_t *h);

#endif
