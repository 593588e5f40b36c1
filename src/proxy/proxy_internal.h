/* proxy_internal.h — what hychat-proxy's files share: the proxy's state
 * and the calls between proxy_pool.c (the configuration in force, backend
 * health and choice, each worker's pool of idle connections) and proxy.c
 * (the exchanges). Not an interface: main.c uses proxy.h. */
#ifndef HYCHAT_PROXY_INTERNAL_H
#define HYCHAT_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

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
	/* Connections with output waiting for the end of the loop's turn
	 * (proxy.c): the requests read in one turn leave together, so that a
	 * backend wakes once for all of them, not once for each. */
	uv_check_t flush;
	struct upstream *to_flush;
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
	struct buf out; /* bytes for the end of the turn (worker's to_flush) */
	struct upstream *next_flush;
	int flush_queued;
	struct buf in;
	size_t last_len;
	int keepalive;
	int chunked;
	int close_delimited;
	uint64_t body_left;
	struct http_chunked dec;
};

/* proxy_pool.c */

/* The configuration in force, with one more reference. */
struct conf_ref *proxy_conf_ref_get(struct proxy *p);
void proxy_conf_ref_put(struct conf_ref *r);
/* A backend of host block vh for a request that has tried those in
 * *tries (a bit per backend, updated): by the block's policy, those
 * marked down only when no other is left; -1 when none is. The one
 * chosen counts as active until proxy_backend_done(). */
int proxy_backend_pick(struct worker *w, struct conf_ref *cr, size_t vh, unsigned *tries);
/* The end of a request on backend be: a failure counts towards marking
 * it down for its fail_timeout, a success clears the count. */
void proxy_backend_done(struct worker *w, struct conf_ref *cr, size_t vh, int be, int failed);
/* An idle connection to the backend named be_name made with tls_ctx,
 * taken out of w's pool, or NULL. */
struct upstream *proxy_pool_take(
    struct worker *w, const char *be_name, const struct http_tls *tls_ctx);
/* A connection whose answer is complete: into its worker's pool when it
 * may serve again and the pool has room, else closed. */
void proxy_pool_put(struct upstream *up);
/* Takes up out of w's pool, if it is there. */
void proxy_pool_remove(struct worker *w, struct upstream *up);

/* proxy.c */

/* Writes what w's connections hold for the end of the turn. */
void proxy_flush_cb(uv_check_t *h);
/* Closes up (once); it is freed when its handles are. */
void proxy_up_close(struct upstream *up);
/* Reads from up, if it does not already. */
void proxy_up_read_start(struct upstream *up);

#endif
