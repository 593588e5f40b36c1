/* proxy.h — the reverse proxy: a struct http_handler that streams each
 * client request to a backend of its virtual host and the answer back.
 *
 * Each worker loop keeps its own pool of idle kept-alive connections per
 * backend (set up by proxy_worker_init() on that loop). The configuration
 * is shared and refcounted: proxy_reload() swaps it for new requests while
 * those in flight finish on the one they started with. Backends that
 * refuse or time out are marked down for their fail_timeout and the
 * request goes to the next one; with none left the client gets 502
 * (refused, garbage) or 504 (no answer in time).
 */
#ifndef HYCHAT_PROXY_H
#define HYCHAT_PROXY_H

#include <uv.h>

#include "hychat/http_server.h"
#include "hychat/proxy_conf.h"

#define PROXY_MAX_IDLE_PER_BACKEND 64
#define PROXY_IDLE_TIMEOUT_MS 30000
#define PROXY_MAX_RESPONSE_HEAD (16 * 1024)
#define PROXY_REPLAY_MAX (64 * 1024) /* a request this small can be retried */
#define PROXY_BUFFER_HIGH (256 * 1024) /* pause the other side past this */
#define PROXY_TLS_READ_CHUNK (16 * 1024)

struct proxy;

/* Takes conf and loads the TLS contexts it names. A Host header without
 * a port matches the port of the listener that took the connection.
 * Returns NULL with err set ("LINE: host NAME: cause") when a certificate,
 * key or CA file cannot be used. */
struct proxy *proxy_new(struct proxy_conf *conf, int access_log, char *err, size_t errsz);
void proxy_free(struct proxy *p);
/* Replaces the configuration (takes conf, even on failure) and reads
 * every certificate again; requests in flight keep the old configuration,
 * connections their certificate. -1 with err set: the old stays. */
int proxy_reload(struct proxy *p, struct proxy_conf *conf, char *err, size_t errsz);
/* The context for a TLS listener: the certificate of the default host
 * block, switched by SNI (proxy_conf_match_sni()) to the one of the host
 * block the client names, in the configuration in force. NULL when no
 * host block has a certificate. */
struct http_tls *proxy_listener_tls(struct proxy *p);

/* Per worker loop: the backend connection pools. */
void proxy_worker_init(struct proxy *p, uv_loop_t *loop);
void proxy_worker_fini(uv_loop_t *loop);

/* The handler to pass to http_server_new() with the proxy as its ctx. */
extern const struct http_handler proxy_http_handler;

#endif
